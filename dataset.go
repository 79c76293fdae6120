package exportd

import (
	"time"
)

// Dataset is one named export declared in a datasets file: parameterised
// SQL, its typed parameters and the columns of its result.
type Dataset struct {
	Name        string // [a-z0-9_-]+
	Title       string
	Description string
	Connection  string // the name of a connection of the config
	SQL         string // with named parameters :name, always bound
	Params      []Param
	Columns     []Column // declared output columns; none means "as the query returns them"
	Sheet       string   // worksheet name; see SheetName
	FileName    string   // file-name template with {param} fields; see FileNameFor
	RowLimit    int64    // most rows of a direct download; 0 = no limit
	Timeout     time.Duration
	MaxDuration time.Duration
	Key         string // key column for keyset-partitioned downloads; "" = none
	// Roles may run the dataset; none means any authenticated principal.
	Roles []string
	// Pins fixes parameters per role: role → parameter → pin. See
	// [Dataset.PinsFor] and [Dataset.ApplyPins].
	Pins map[string]map[string]Pin
	// Personal marks a dataset holding personal data: an export needs a
	// stated purpose and is recorded in the audit trail (see PrivacyConfig).
	Personal bool
	// Access says, per role, which personal columns it sees: role →
	// column (or AccessAll) → AccessFull, AccessMasked or AccessOmitted.
	Access map[string]map[string]string
	// Encryption is "", EncryptionOptional or EncryptionRequired: whether
	// an XLSX may or must be password-protected.
	Encryption string
	// Marking puts the downloader and the time in the sheet's printed
	// header/footer and in the document properties.
	Marking bool
	// Sheets, when not empty, are the dataset's sheets: it has no SQL and
	// no Columns of its own then (see [Sheet]).
	Sheets []Sheet
	// TotalLabel is the label of a totals row; "" means DefaultTotalLabel.
	TotalLabel string
	// Schedules are the dataset's scheduled deliveries (see Schedule).
	Schedules []*Schedule

	// Origin is where the dataset was declared, for messages that point
	// at a line of the datasets file.
	Origin Origin
}

// Query returns the dataset's query with the given bound parameters (see
// [Dataset.BindParams]) and its statement timeout.
func (d *Dataset) Query(params map[string]any) Query {
	return Query{SQL: d.SQL, Params: params, Timeout: d.Timeout}
}

// SheetName returns the worksheet name: Sheet, else the dataset's name cut
// to Excel's 31 characters.
func (d *Dataset) SheetName() string {
	if d.Sheet != "" {
		return d.Sheet
	}
	if r := []rune(d.Name); len(r) > MaxSheetName {
		return string(r[:MaxSheetName])
	}
	return d.Name
}

// MaxSheetName is the most characters of a worksheet name (Excel's limit).
const MaxSheetName = 31

// Origin says where a dataset was declared in its datasets file.
type Origin struct {
	File string // the datasets file, as given
	Line int    // the line of the dataset's name
	// Lines maps a field (e.g. "params[1].type") to its line.
	Lines map[string]int
	// SQLBlock is true when the SQL is a literal block (|), so that the
	// line of each of its lines is known.
	SQLBlock bool
}

// LineOf returns the line of field, else the line of the dataset.
func (o Origin) LineOf(field string) int {
	if l, ok := o.Lines[field]; ok {
		return l
	}
	return o.Line
}

// ColumnTypes lists the valid declared column types.
var ColumnTypes = []Type{TypeString, TypeInt, TypeFloat, TypeDecimal, TypeBool, TypeDate, TypeDateTime}
