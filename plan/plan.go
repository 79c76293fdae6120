package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/format"
	"github.com/exportd/exportd/mask"
	"github.com/exportd/exportd/xlsx"
)

// ErrAuditUnavailable is returned (wrapped) by [Plan.Run] when the record
// of intent of a personal export cannot be written: nothing has been
// sent. A server answers it with 503.
var ErrAuditUnavailable = errors.New("the audit trail cannot be written, so personal data is not exported")

// Principal is who an export is for.
type Principal struct {
	Name   string            // recorded in the audit trail and marked on the file
	Roles  []string          // decide the masking of personal columns (and, enforced, the access)
	Attrs  map[string]string // for parameters pinned to an attribute
	Client string            // where the request came from, for the audit trail
	// Enforce applies the dataset's roles and pinned parameters to the
	// principal: an authenticated principal of a server. A server without
	// access control, the operator's command line and a job's worker
	// (whose request was checked when it was submitted) leave it off;
	// masking by Roles applies either way.
	Enforce bool
}

// Request is what a caller asks of a dataset.
type Request struct {
	Format exportd.Format
	// Params are the parameters as given (query-string values). The keys a
	// caller handles itself (parts, purpose, columns) must be taken out:
	// a reserved name left here is refused.
	Params    url.Values
	Principal Principal
	Purpose   audit.Purpose
	// Columns is the choice of columns; nil means every column the roles
	// may see. It can only take columns away.
	Columns []string
	// Now is the time marked on the file; zero means time.Now().
	Now time.Time
	// NoBOM leaves the UTF-8 byte-order mark out of CSV/TSV files.
	NoBOM bool
	// Sheets is the choice of sheets of a dataset of several (sheet=);
	// nil means every sheet. A dataset of one query takes none.
	Sheets []string
}

// Plan is one export of one dataset, decided: who, what parameters, which
// columns and how masked, the writer's options, the file's name and the
// audit record. [New] makes it; [Plan.Run] runs it.
type Plan struct {
	Dataset   *exportd.Dataset
	Format    exportd.Format
	Principal Principal
	Purpose   audit.Purpose
	// Raw are the parameters as given, with the pinned ones filled in:
	// what a background job stores and a link carries.
	Raw url.Values
	// Params are the bound parameters; Query the dataset's query with them.
	Params map[string]any
	Query  exportd.Query
	// Chosen is the column choice of the request (nil: all).
	Chosen []string
	// ChosenSheets is the sheet choice of the request (nil: all).
	ChosenSheets []string
	// Options are the writer's options (sheet, title, marking…).
	Options  format.Options
	FileName string
	// Sheets are the sheets exported, in the dataset's order, of a dataset
	// of several (exportd.Dataset.Sheets); nil for a dataset of one query.
	Sheets []*Sheet

	masking *mask.Plan // nil: the dataset declares no columns
	loc     *time.Location
}

// Sheet is the plan of one sheet of a dataset of several: its query and
// the masking and choice of its columns.
type Sheet struct {
	Name       string
	Connection string
	Query      exportd.Query
	Decl       *exportd.Sheet
	masking    mask.Plan
}

// Columns returns the names of the sheet's columns in the file.
func (s *Sheet) Columns() []string { return s.masking.Names() }

// Zip reports whether the file is a ZIP archive of one file per sheet:
// a CSV, TSV or JSON Lines export of more than one sheet.
func (p *Plan) Zip() bool { return p.Format != exportd.FormatXLSX && len(p.Sheets) > 1 }

// ContentType is the MIME type of the file.
func (p *Plan) ContentType() string {
	if p.Zip() {
		return "application/zip"
	}
	return p.Format.ContentType()
}

// New plans an export of the dataset name of cfg. It decides, in this
// order: access and pinned parameters, the binding of parameters
// (reserved names refused), the purpose (for a personal dataset) and the
// choice of columns, the masking of each column, the writer's options,
// the file name and the audit record. Every path that exports a dataset
// (the stream, the web UI, a background job's submission and its worker,
// the command line) calls it, so that the same request gives the same
// file everywhere.
//
// Its errors: [exportd.ErrUnknownDataset]; [auth.ErrForbidden] (wrapped)
// and *[exportd.PinError] for access; *[exportd.ParamError] and
// *[exportd.PurposeError] for the fields of the request (joined, so that
// a form can show each); [mask.ColumnError] for the columns.
func New(cfg *exportd.Config, name string, req Request) (*Plan, error) {
	d, err := cfg.Lookup(name)
	if err != nil {
		return nil, err
	}
	loc := cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	p := &Plan{Dataset: d, Format: req.Format, Principal: req.Principal, Chosen: req.Columns, ChosenSheets: req.Sheets, loc: loc,
		Purpose: audit.Purpose{Category: strings.TrimSpace(req.Purpose.Category), Text: strings.TrimSpace(req.Purpose.Text)}}
	if p.Format == "" {
		p.Format = exportd.FormatXLSX
	}
	if _, err := exportd.ParseFormat(string(p.Format)); err != nil {
		return nil, &exportd.ParamError{Param: "format", Reason: err.Error()}
	}
	p.Raw = make(url.Values, len(req.Params))
	for k, v := range req.Params {
		p.Raw[k] = slices.Clone(v)
	}

	// Access and pinned parameters.
	pr := req.Principal
	if pr.Enforce {
		if err := Authorize(d, pr, p.Raw, loc); err != nil {
			return nil, err
		}
	}

	// Parameters, then the purpose: every field at fault is reported.
	var fieldErrs []error
	for _, k := range exportd.ReservedParamNames {
		if _, given := p.Raw[k]; given {
			fieldErrs = append(fieldErrs, &exportd.ParamError{Param: k, Reason: fmt.Sprintf("%q is reserved and not a parameter of %s", k, d.Name)})
			delete(p.Raw, k)
		}
	}
	params, err := d.BindParams(p.Raw, loc)
	if err != nil {
		fieldErrs = append(fieldErrs, flatten(err)...)
	}
	if d.Personal {
		if err := cfg.Privacy.CheckPurpose(p.Purpose.Category, p.Purpose.Text); err != nil {
			// The purpose comes first: it is what a personal export asks first.
			fieldErrs = append([]error{err}, fieldErrs...)
		}
	}
	if len(fieldErrs) > 0 {
		return nil, errors.Join(fieldErrs...)
	}
	p.Params = params
	p.Query = d.Query(params)

	if len(d.Sheets) > 0 {
		if err := p.planSheets(req); err != nil {
			return nil, err
		}
	} else if req.Sheets != nil {
		return nil, &exportd.ParamError{Param: "sheet", Reason: d.Name + " is one sheet; sheet= chooses among the sheets of a dataset that declares several"}
	}

	// The choice of columns and their masking.
	if len(d.Sheets) > 0 {
		// planned per sheet
	} else if req.Columns != nil {
		if len(d.Columns) == 0 {
			return nil, &exportd.ParamError{Param: "columns", Reason: "columns= needs a dataset that declares its columns; " + d.Name + " does not"}
		}
		if len(req.Columns) == 0 {
			return nil, &exportd.ParamError{Param: "columns", Reason: "no column chosen"}
		}
	}
	if len(d.Columns) > 0 && len(d.Sheets) == 0 {
		pol, err := mask.PolicyFor(d)
		if err != nil {
			return nil, fmt.Errorf("dataset %s: %w", d.Name, err)
		}
		m, err := pol.Plan(pr.Roles, d.Columns, req.Columns)
		if err != nil {
			return nil, err
		}
		p.masking = &m
	}

	// The writer's options and the file's name.
	p.Options = format.Options{BOM: !req.NoBOM, Sheet: d.SheetName(), TotalLabel: d.TotalLabel,
		Properties: xlsx.Properties{Title: d.Title, Description: d.Description}}
	if d.Marking {
		now := req.Now
		if now.IsZero() {
			now = time.Now()
		}
		// The person's name, not the source-qualified identity.
		p.Options.Mark(auth.NameOf(pr.Name), now.In(loc))
	}
	p.FileName = d.FileNameFor(params, p.Format)
	switch {
	case p.Zip():
		p.FileName = strings.TrimSuffix(p.FileName, "."+string(p.Format)) + ".zip"
	case len(p.Sheets) == 1 && len(d.Sheets) > 1:
		// One sheet of several: its name tells it from the others.
		p.FileName = strings.TrimSuffix(p.FileName, "."+string(p.Format)) + "-" + exportd.SanitizeFileName(p.Sheets[0].Name) + "." + string(p.Format)
	}
	return p, nil
}

// planSheets plans the sheets of a dataset of several: the choice of
// sheets (sheet=), the choice of columns (columns=, each "sheet.column",
// or a column's name when one chosen sheet alone has it), and the
// masking of each sheet's columns. A choice of columns lists the file's
// columns: every chosen sheet must have one in it.
func (p *Plan) planSheets(req Request) error {
	d := p.Dataset
	chosen := map[string]bool{}
	for _, name := range req.Sheets {
		if _, ok := d.LookupSheet(name); !ok {
			return &exportd.ParamError{Param: "sheet", Reason: fmt.Sprintf("unknown sheet %q of %s (want one of %s)", name, d.Name, strings.Join(d.SheetNames(), ", "))}
		}
		chosen[name] = true
	}
	if req.Sheets != nil && len(chosen) == 0 {
		return &exportd.ParamError{Param: "sheet", Reason: "no sheet chosen"}
	}
	for i := range d.Sheets {
		sh := &d.Sheets[i]
		if req.Sheets != nil && !chosen[sh.Name] {
			continue
		}
		p.Sheets = append(p.Sheets, &Sheet{Name: sh.Name, Connection: d.SheetConnection(sh), Query: sh.Query(p.Params, d.Timeout), Decl: sh})
	}
	want := map[*Sheet][]string{}
	if req.Columns != nil {
		if len(req.Columns) == 0 {
			return &exportd.ParamError{Param: "columns", Reason: "no column chosen"}
		}
		for _, c := range req.Columns {
			s, col, err := p.sheetColumn(c)
			if err != nil {
				return err
			}
			want[s] = append(want[s], col)
		}
	}
	for _, s := range p.Sheets {
		if req.Columns != nil && len(want[s]) == 0 {
			// A choice lists the file's columns: a sheet it leaves out
			// entirely is not exported in full behind the user's back.
			return &exportd.ParamError{Param: "columns", Reason: fmt.Sprintf("no column of sheet %s chosen (choose one, or leave the sheet out with sheet=)", s.Name)}
		}
		pol, err := mask.PolicyForColumns(d, s.Decl.Columns)
		if err != nil {
			return fmt.Errorf("dataset %s: sheet %s: %w", d.Name, s.Name, err)
		}
		if s.masking, err = pol.Plan(p.Principal.Roles, s.Decl.Columns, want[s]); err != nil {
			var ce *mask.ColumnError
			if errors.As(err, &ce) {
				ce.Column = s.Name + "." + ce.Column
				return ce
			}
			return &exportd.ParamError{Param: "columns", Reason: "sheet " + s.Name + ": " + err.Error()}
		}
	}
	return nil
}

// sheetColumn finds the sheet and column a columns= entry names:
// "sheet.column", or a column's name that one chosen sheet alone has.
func (p *Plan) sheetColumn(c string) (*Sheet, string, error) {
	for _, s := range p.Sheets {
		if col, ok := strings.CutPrefix(c, s.Name+"."); ok && hasColumn(s.Decl.Columns, col) {
			return s, col, nil
		}
	}
	var found []*Sheet
	for _, s := range p.Sheets {
		if hasColumn(s.Decl.Columns, c) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 1:
		return found[0], c, nil
	case 0:
		return nil, "", &mask.ColumnError{Column: c, Err: mask.ErrUnknownColumn}
	}
	names := make([]string, len(found))
	for i, s := range found {
		names[i] = s.Name + "." + c
	}
	return nil, "", &exportd.ParamError{Param: "columns", Reason: fmt.Sprintf("%q is a column of several sheets: name one as %s", c, strings.Join(names, " or "))}
}

func hasColumn(cols []exportd.Column, name string) bool {
	return slices.ContainsFunc(cols, func(c exportd.Column) bool { return c.Name == name })
}

// Authorize checks that pr may export d, and fills in params (raw values)
// the parameters pinned for pr: a dataset none of pr's roles may run is
// refused ([auth.ErrForbidden], wrapped), and so is a pinned parameter
// given another value (*[exportd.PinError]). New applies it to an
// enforced principal; a server's description of a dataset applies it too.
func Authorize(d *exportd.Dataset, pr Principal, params url.Values, loc *time.Location) error {
	if !d.Allows(pr.Roles) {
		roles := "no roles"
		if len(pr.Roles) > 0 {
			roles = "roles " + strings.Join(pr.Roles, ", ")
		}
		return fmt.Errorf("%w: %s (%s) may not export %s; it needs one of the roles %s",
			auth.ErrForbidden, pr.Name, roles, d.Name, strings.Join(d.Roles, ", "))
	}
	pins, err := d.PinsFor(pr.Roles, pr.Attrs)
	if err != nil {
		return err
	}
	return d.ApplyPins(params, pins, loc)
}

// flatten returns the errors an error joins, or the error itself.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Columns returns the names of the file's columns after the masking plan
// and the choice, or nil when the dataset declares none (the result's
// columns are written).
//
// For a dataset of several sheets, each is "sheet.column".
func (p *Plan) Columns() []string {
	if p.Sheets != nil {
		var out []string
		for _, s := range p.Sheets {
			for _, c := range s.Columns() {
				out = append(out, s.Name+"."+c)
			}
		}
		return out
	}
	if p.masking == nil {
		return nil
	}
	return p.masking.Names()
}

// AuditParams renders the bound parameters for an audit record or a log
// line: each as text, a list joined by commas, a missing value as "".
func (p *Plan) AuditParams() map[string]string { return AuditParams(p.Params) }

// AuditParams renders bound parameters as [Plan.AuditParams] does.
func AuditParams(params map[string]any) map[string]string {
	out := make(map[string]string, len(params))
	text := func(v any) string {
		switch v := v.(type) {
		case nil:
			return ""
		case exportd.DateArg:
			return v.Format(time.DateOnly)
		case time.Time:
			return v.Format(time.RFC3339)
		}
		return fmt.Sprint(v)
	}
	for k, v := range params {
		if list, ok := v.([]any); ok {
			s := make([]string, len(list))
			for i, e := range list {
				s[i] = text(e)
			}
			out[k] = strings.Join(s, ",")
			continue
		}
		out[k] = text(v)
	}
	return out
}

// Record returns the skeleton of the plan's audit record: who, from
// where, which dataset, parameters, columns, purpose and format.
func (p *Plan) Record() audit.Record {
	rec := audit.Record{Principal: p.Principal.Name, Roles: slices.Clone(p.Principal.Roles), Client: p.Principal.Client,
		Dataset: p.Dataset.Name, Columns: p.Columns(), Purpose: p.Purpose, Format: string(p.Format)}
	rec.Params, _ = json.Marshal(p.AuditParams())
	for _, sh := range p.Sheets {
		rec.Sheets = append(rec.Sheets, audit.Sheet{Name: sh.Name})
	}
	return rec
}

// NewWriter returns the plan's writer maker: the format writer with its
// options, behind the masking plan (so every format masks alike).
func (p *Plan) NewWriter() func(io.Writer, []exportd.Column) (exportd.RowWriter, error) {
	return p.newWriter(p.Options)
}

func (p *Plan) newWriter(opts format.Options) func(io.Writer, []exportd.Column) (exportd.RowWriter, error) {
	f := p.Format
	nw := func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
		return format.New(f, w, cols, opts)
	}
	if p.masking != nil {
		return p.masking.NewWriter(nw)
	}
	return nw
}

// Auditor keeps the audit trail (an *audit.Store).
type Auditor interface {
	Append(ctx context.Context, r *audit.Record) error
}

// Options are the parts of a run that belong to its caller: where the
// rows come from, where the bytes go, the trail, and the engine's hooks.
type Options struct {
	Source exportd.Source
	// Sources are the sources of other connections, by name: those of
	// sheets that name a connection other than the dataset's.
	Sources map[string]exportd.Source
	Output  io.Writer
	// Audit is the trail. A personal dataset is exported only when its
	// record of intent has been written there, before the first byte
	// (nil: [ErrAuditUnavailable]); its outcome is recorded after the last.
	Audit Auditor
	// OnAuditError is told of an outcome record that could not be written
	// after retries (the record of intent shows the export as started
	// without an outcome). Nil: the error is returned as Result.AuditErr
	// only.
	OnAuditError func(error)
	// Describe, if set, gives the text of a failed export's audit error.
	Describe func(error) string

	// Direct marks a direct download (the HTTP stream), to which the
	// dataset's row_limit applies; a background job and the command line
	// have no such limit (they are what a user is offered past it).
	Direct bool
	// Gzip compresses the output (an HTTP response's Content-Encoding):
	// the audit record's digest is of the compressed bytes, those sent.
	// Each flush of the engine flushes the compressor first.
	Gzip bool
	// Finish, if set, is called after the file's last byte has been
	// written to Output (an HTTP response flushes it there), before the
	// outcome is recorded; its error fails the export.
	Finish func() error

	// Hash computes the SHA-256 of the bytes written (Result.SHA256). A
	// personal dataset's run always does, for its audit record; others
	// skip the work unless asked (a job keeps its result's digest).
	Hash bool

	// Query replaces the plan's query (a part of the export).
	Query *exportd.Query
	// WrapWriter, if set, is given the format writer (behind the masking)
	// and returns the writer the engine uses.
	WrapWriter func(exportd.RowWriter) exportd.RowWriter

	// The engine's hooks: see [exportd.Export].
	Admit            func(ctx context.Context) (release func(), err error)
	Turn             func(ctx context.Context, rows int64) (done func(), err error)
	KeepAlive        time.Duration
	FlushInterval    time.Duration
	OnFlush          func(keepAlive bool) error
	OnProgress       func(exportd.Progress)
	ProgressInterval time.Duration
	Estimate         bool
}

// Result is what a run did.
type Result struct {
	exportd.Stats
	SHA256 string // of the bytes written to Output, when Options.Hash or the dataset is personal
	// AuditErr is set when the outcome record could not be written.
	AuditErr error
}

// outcomeTries is how often an outcome record is tried before it is
// reported.
const outcomeTries = 3

// Run runs the export: the record of intent of a personal dataset first
// (nothing is written when it fails), then the engine from Source into
// Output with the plan's writer, masking and limits, then the outcome
// record (rows, bytes, SHA-256 of the bytes written). On an error the
// output is left unfinished (see [exportd.Export.Run]).
func (p *Plan) Run(ctx context.Context, o Options) (Result, error) {
	start := time.Now()
	d := p.Dataset
	var sources []exportd.Source
	if p.Sheets != nil {
		// Checked before anything is recorded or written.
		if o.Query != nil {
			return Result{}, fmt.Errorf("export %s: a dataset of several sheets is exported whole, not in parts", d.Name)
		}
		for _, s := range p.Sheets {
			src := o.Source
			if s.Connection != d.Connection {
				src = o.Sources[s.Connection]
			}
			if src == nil {
				return Result{}, fmt.Errorf("export %s: sheet %s: no source for connection %q", d.Name, s.Name, s.Connection)
			}
			sources = append(sources, src)
		}
	}
	var intent *audit.Record
	if d.Personal {
		if o.Audit == nil {
			return Result{}, fmt.Errorf("export %s: %w: no audit trail is configured", d.Name, ErrAuditUnavailable)
		}
		rec := p.Record()
		rec.Time, rec.Outcome = start, audit.OutcomeStarted
		if err := o.Audit.Append(context.WithoutCancel(ctx), &rec); err != nil && !errors.Is(err, audit.ErrNotLogged) {
			return Result{}, fmt.Errorf("export %s: %w: %v", d.Name, ErrAuditUnavailable, err)
		}
		intent = &rec
	}
	var dig *digest
	var dst io.Writer = o.Output
	if intent != nil || o.Hash {
		dig = &digest{d: audit.NewDigest(o.Output)}
		dst = dig
	}
	onFlush := o.OnFlush
	var gz *gzipWriter
	admit := o.Admit
	if o.Gzip {
		// No compressor until the export is admitted (gzip.go).
		gz = newGzipWriter(dst, flate.BestSpeed)
		if admit == nil {
			gz.compress()
		} else {
			admit = func(ctx context.Context) (func(), error) {
				release, err := o.Admit(ctx)
				gz.compress()
				return release, err
			}
		}
		dst = gz
		onFlush = func(keepAlive bool) error {
			if err := gz.Flush(); err != nil {
				return err
			}
			if o.OnFlush != nil {
				return o.OnFlush(keepAlive)
			}
			return nil
		}
	}
	opts := p.Options
	// Sent as it is (not gzip) and kept alive, a JSON Lines file keeps
	// alive with spaces (see format.Options.KeepAlive).
	opts.KeepAlive = o.KeepAlive > 0 && !o.Gzip
	newWriter := p.newWriter(opts)
	if o.WrapWriter != nil {
		inner := newWriter
		newWriter = func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
			rw, err := inner(w, cols)
			if err != nil {
				return nil, err
			}
			return o.WrapWriter(rw), nil
		}
	}
	q := p.Query
	if o.Query != nil {
		q = *o.Query
	}
	e := &exportd.Export{
		Source:           o.Source,
		Query:            q,
		Columns:          d.Columns,
		Output:           dst,
		NewWriter:        newWriter,
		KeepAlive:        o.KeepAlive,
		FlushInterval:    o.FlushInterval,
		OnFlush:          onFlush,
		OnProgress:       o.OnProgress,
		ProgressInterval: o.ProgressInterval,
		Estimate:         o.Estimate,
		Admit:            admit,
		Turn:             o.Turn,
	}
	if o.Direct {
		e.MaxRows = d.RowLimit
	}
	if p.Sheets != nil {
		e.Sheets = p.exportSheets(o, opts, sources)
	}
	st, err := e.Run(ctx)
	if err == nil && gz != nil {
		err = gz.Close()
	}
	if err == nil && o.Finish != nil {
		err = o.Finish()
	}
	res := Result{Stats: st}
	if dig != nil {
		res.SHA256, _ = dig.sum()
	}
	if intent != nil {
		rec := p.Record()
		rec.Time, rec.Ref = start, intent.Seq
		rec.Rows, rec.Outcome = st.Rows, audit.OutcomeOf(err)
		for i := range rec.Sheets {
			// The rows of each sheet begun; 0 for those never reached.
			if i < len(st.Sheets) {
				rec.Sheets[i].Rows = st.Sheets[i].Rows
			}
		}
		rec.SHA256, rec.Bytes = dig.sum()
		if err != nil {
			rec.Error = err.Error()
			if o.Describe != nil {
				rec.Error = o.Describe(err)
			}
		}
		res.AuditErr = appendOutcome(ctx, o.Audit, &rec)
		if res.AuditErr != nil && o.OnAuditError != nil {
			o.OnAuditError(res.AuditErr)
		}
	}
	return res, err
}

// exportSheets returns the engine's sheets of the plan: each sheet's
// query on its source, its declared columns, and its writer behind its
// masking, all of one book (format.Book) — or, for one sheet of a CSV,
// TSV or JSON Lines export, a plain file.
func (p *Plan) exportSheets(o Options, opts format.Options, sources []exportd.Source) []exportd.ExportSheet {
	names := make([]string, len(p.Sheets))
	for i, s := range p.Sheets {
		names[i] = s.Name
	}
	var makers []func(io.Writer, []exportd.Column) (exportd.RowWriter, error)
	if p.Format == exportd.FormatXLSX || len(p.Sheets) > 1 {
		makers = format.BookWriters(p.Format, names, opts)
	} else {
		f := p.Format
		makers = []func(io.Writer, []exportd.Column) (exportd.RowWriter, error){func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
			return format.New(f, w, cols, opts)
		}}
	}
	out := make([]exportd.ExportSheet, len(p.Sheets))
	for i, s := range p.Sheets {
		nw := s.masking.NewWriter(makers[i])
		if o.WrapWriter != nil {
			inner := nw
			nw = func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
				rw, err := inner(w, cols)
				if err != nil {
					return nil, err
				}
				return o.WrapWriter(rw), nil
			}
		}
		out[i] = exportd.ExportSheet{Name: s.Name, Source: sources[i], Query: s.Query, Columns: s.Decl.Columns, NewWriter: nw}
	}
	return out
}

// appendOutcome appends rec, trying again a few times: the export has
// happened, and its record of intent says so already.
func appendOutcome(ctx context.Context, a Auditor, rec *audit.Record) error {
	ctx = context.WithoutCancel(ctx)
	var err error
	for i := range outcomeTries {
		if i > 0 {
			time.Sleep(time.Duration(i) * 200 * time.Millisecond)
		}
		r := *rec
		err = a.Append(ctx, &r)
		if errors.Is(err, audit.ErrCompleted) {
			return nil // an earlier try was stored after all
		}
		if err == nil || errors.Is(err, audit.ErrNotLogged) {
			*rec = r
			return err
		}
	}
	return fmt.Errorf("audit: outcome of %s not recorded (record %d shows it started): %w", rec.Dataset, rec.Ref, err)
}

// digest is an audit.Digest safe for the XLSX writer's goroutine and the
// engine's flushes.
type digest struct {
	mu sync.Mutex
	d  *audit.Digest
}

func (w *digest) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.d.Write(b)
}

func (w *digest) sum() (string, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.d.Sum(), w.d.N()
}
