package server

// Scheduled deliveries (package jobs, schedule.go): list the schedules of
// the datasets file with their last and next run, and run one now. The
// routes are served when Config.Jobs is set.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/plan"
)

// scheduleRoutes lists the schedules' routes.
func (s *Server) scheduleRoutes() []route {
	return []route{
		{"GET", "/v1/schedules", "/v1/schedules", http.HandlerFunc(s.listSchedules)},
		{"GET", "/v1/schedules/{dataset}/{name}", "/v1/schedules/{dataset}/{name}", http.HandlerFunc(s.getSchedule)},
		{"POST", "/v1/schedules/{dataset}/{name}/run", "/v1/schedules/{dataset}/{name}/run", http.HandlerFunc(s.runSchedule)},
	}
}

// mayUseSchedule reports whether r's principal may run schedule sc of d
// now and download its files: the admin role; or, strictly, every right
// the schedule's owner uses: the dataset's roles, the pins of the
// principal's own attributes holding for the schedule's parameters (a
// principal pinned to another branch gets nothing), and, for a personal
// dataset, every role of the owner (the masking follows the roles). A
// server without access control allows it.
func (s *Server) mayUseSchedule(r *http.Request, d *exportd.Dataset, sc *exportd.Schedule) error {
	p := auth.From(r.Context())
	if p == nil || p.HasRole("admin") {
		return nil
	}
	deny := func(why string) error {
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Field: "name",
			Message: fmt.Sprintf("%s may not run schedule %s or download its files: %s (or the admin role)", p.ID(), sc.ID(), why)}
	}
	if d.Personal {
		for _, role := range sc.Owner.Roles {
			if !p.HasRole(role) {
				return deny(fmt.Sprintf("%s holds personal data, and the schedule's file is made for the roles %v", d.Name, sc.Owner.Roles))
			}
		}
	}
	params, err := sc.ResolveParams(d, time.Now())
	if err != nil {
		return deny("its parameters do not resolve: " + err.Error())
	}
	// The parameters the owner's pins fix, then the caller's own pins
	// against them.
	loc := s.conf(r).cfg.Location
	pins, err := d.PinsFor(sc.Owner.Roles, sc.Owner.Attrs)
	if err == nil {
		err = d.ApplyPins(params, pins, loc)
	}
	if err != nil {
		return deny("the owner's pins do not hold: " + err.Error())
	}
	pr := plan.Principal{Name: p.ID(), Roles: p.Roles, Attrs: p.Attrs, Enforce: true}
	if err := plan.Authorize(d, pr, params, loc); err != nil {
		return deny(err.Error())
	}
	return nil
}

// maySeeSchedules reports whether r's principal may see the schedules of
// d: those who may run d, and the admin.
func maySeeSchedules(r *http.Request, d *exportd.Dataset) bool {
	p := auth.From(r.Context())
	return mayRun(r, d) || p.HasRole("admin")
}

// scheduleOf returns the schedule dataset/name of the datasets served.
func (s *Server) scheduleOf(r *http.Request) (*exportd.Dataset, *exportd.Schedule, error) {
	ds, name := r.PathValue("dataset"), r.PathValue("name")
	d, err := s.conf(r).cfg.Lookup(ds)
	if err != nil {
		return nil, nil, &Error{Status: http.StatusNotFound, Code: "unknown_dataset", Field: "dataset", Message: err.Error()}
	}
	i := slices.IndexFunc(d.Schedules, func(sc *exportd.Schedule) bool { return sc.Name == name })
	if i < 0 || !maySeeSchedules(r, d) {
		return nil, nil, &Error{Status: http.StatusNotFound, Code: "unknown_schedule", Field: "name",
			Message: fmt.Sprintf("dataset %s has no schedule %q", d.Name, name)}
	}
	return d, d.Schedules[i], nil
}

// statuses returns the schedules r's principal may see (those of the
// datasets it may run), each with its last job's link only when it may
// use the schedule (mayUseSchedule).
func (s *Server) statuses(r *http.Request, only func(*exportd.Dataset) bool) ([]jobs.ScheduleStatus, error) {
	cfg := s.conf(r).cfg
	list, err := s.cfg.Jobs.Schedules(r.Context(), func(d *exportd.Dataset) bool {
		return maySeeSchedules(r, d) && (only == nil || only(d))
	})
	if err != nil {
		return nil, err
	}
	for i := range list {
		st := &list[i]
		d, derr := cfg.Lookup(st.Dataset)
		var sc *exportd.Schedule
		if derr == nil {
			if k := slices.IndexFunc(d.Schedules, func(x *exportd.Schedule) bool { return x.Name == st.Name }); k >= 0 {
				sc = d.Schedules[k]
			}
		}
		if sc == nil || s.mayUseSchedule(r, d, sc) != nil {
			if st.LastJob != nil {
				st.LastJob.DownloadURL = ""
			}
			continue
		}
		st.MayRun = true
	}
	return list, nil
}

// listSchedules answers GET /v1/schedules: {"schedules": […]}.
func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) {
	list, err := s.statuses(r, nil)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedules": list})
}

// getSchedule answers GET /v1/schedules/{dataset}/{name}.
func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) {
	d, sc, err := s.scheduleOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.statuses(r, func(x *exportd.Dataset) bool { return x.Name == d.Name })
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, st := range list {
		if st.Name == sc.Name {
			writeJSON(w, http.StatusOK, st)
			return
		}
	}
	s.writeError(w, r, &Error{Status: http.StatusNotFound, Code: "unknown_schedule", Field: "name", Message: "no such schedule"})
}

// runRequest is the optional body of POST …/run: {"at": "2024-12-01T00:30:00+09:00"}
// runs the schedule as its tick at that time would (its relative dates
// resolved then: a month delivered again).
type runRequest struct {
	At *time.Time `json:"at"`
}

// runSchedule answers POST /v1/schedules/{dataset}/{name}/run: 202 and
// the job (joined: X-Exportd-Joined), for a principal that may use the
// schedule (mayUseSchedule).
func (s *Server) runSchedule(w http.ResponseWriter, r *http.Request) {
	d, sc, err := s.scheduleOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.mayUseSchedule(r, d, sc); err != nil {
		s.writeError(w, r, err)
		return
	}
	var req runRequest
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			s.writeError(w, r, badParameter("at", "malformed JSON body (want {\"at\": \"RFC 3339 time\"}): "+err.Error()))
			return
		}
	} else if v := r.URL.Query().Get("at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			s.writeError(w, r, badParameter("at", "at: want an RFC 3339 time such as 2024-12-01T00:30:00+09:00"))
			return
		}
		req.At = &t
	}
	var at time.Time
	if req.At != nil {
		at = *req.At
	}
	j, joined, err := s.cfg.Jobs.RunSchedule(r.Context(), d.Name, sc.Name, at)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("schedule run by hand", append(auditAttrs(r), "schedule", sc.ID(), "job", j.ID, "joined", joined)...)
	w.Header().Set("Location", "/v1/schedules/"+d.Name+"/"+sc.Name)
	if joined {
		w.Header().Set("X-Exportd-Joined", "true")
	}
	writeJSON(w, http.StatusAccepted, j)
}

// uiSchedule is a row of the UI's schedules page.
type uiSchedule struct {
	jobs.ScheduleStatus
	Next, Last, State, StateKey, Error, Rows, Link string
	Deliveries                                     []jobs.DeliveryState
}

// uiSchedulesPage is the data of the schedules page.
type uiSchedulesPage struct {
	List           []uiSchedule
	Message, Error string
}

// uiStateLabels are the job states in Korean.
var uiStateLabels = map[string]string{
	jobs.StateQueued: "대기", jobs.StateRunning: "실행 중", jobs.StateSucceeded: "완료",
	jobs.StateFailed: "실패", jobs.StateCancelled: "취소됨", jobs.StateExpired: "만료됨",
}

// uiSchedules shows the schedules page: GET /ui/schedules ("정기
// 내보내기"), rendered on the server: last and next run, state,
// deliveries and link of each schedule the principal may see.
func (s *Server) uiSchedules(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Jobs == nil {
		s.render(w, r, http.StatusNotFound, "index", uiPage{Title: "찾을 수 없음", Nav: "datasets"})
		return
	}
	data := uiSchedulesPage{}
	switch r.URL.Query().Get("ran") {
	case "":
	case "joined":
		data.Message = "같은 실행이 이미 진행 중입니다."
	default:
		data.Message = "실행을 시작했습니다 (작업 " + r.URL.Query().Get("ran") + ")."
	}
	list, err := s.statuses(r, nil)
	if err != nil {
		data.Error = "정기 내보내기를 불러오지 못했습니다: " + err.Error()
	}
	for _, st := range list {
		loc, lerr := time.LoadLocation(st.Timezone)
		if lerr != nil {
			loc = time.UTC
		}
		u := uiSchedule{ScheduleStatus: st, Next: st.NextRun.In(loc).Format("2006-01-02 15:04"), Last: "-", State: "-", Rows: "-"}
		if u.Title == "" {
			u.Title = u.Dataset
		}
		if j := st.LastJob; j != nil {
			u.State, u.StateKey, u.Error, u.Rows = uiStateLabels[j.State], j.State, j.Error, groupDigits(j.Rows)
			if j.Tick != nil {
				u.Last = j.Tick.In(loc).Format("2006-01-02 15:04")
				if j.Manual {
					u.Last += " (수동)"
				}
			}
			u.Link, u.Deliveries = j.DownloadURL, j.Deliveries
		}
		data.List = append(data.List, u)
	}
	s.render(w, r, http.StatusOK, "schedules", uiPage{Title: "정기 내보내기", Nav: "schedules", Data: data})
}

// uiRunSchedule is the page's "지금 실행" (run now): the same rules as
// POST /v1/schedules/{dataset}/{name}/run, then back to the page (303).
func (s *Server) uiRunSchedule(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Jobs == nil {
		s.render(w, r, http.StatusNotFound, "index", uiPage{Title: "찾을 수 없음", Nav: "datasets"})
		return
	}
	d, sc, err := s.scheduleOf(r)
	if err == nil {
		err = s.mayUseSchedule(r, d, sc)
	}
	if err != nil {
		s.render(w, r, toError(err).Status, "schedules", uiPage{Title: "정기 내보내기", Nav: "schedules",
			Data: uiSchedulesPage{Error: "실행할 수 없습니다: " + toError(err).Message}})
		return
	}
	j, joined, err := s.cfg.Jobs.RunSchedule(r.Context(), d.Name, sc.Name, time.Time{})
	if err != nil {
		s.render(w, r, http.StatusInternalServerError, "schedules", uiPage{Title: "정기 내보내기", Nav: "schedules",
			Data: uiSchedulesPage{Error: "실행하지 못했습니다: " + err.Error()}})
		return
	}
	s.log.Info("schedule run by hand", append(auditAttrs(r), "schedule", sc.ID(), "job", j.ID, "joined", joined)...)
	ran := j.ID
	if joined {
		ran = "joined"
	}
	http.Redirect(w, r, "/ui/schedules?ran="+ran, http.StatusSeeOther)
}
