// Package labs renders the labs view of one launch: banner, notices and result rows.
package labs

// Props is the view model of the labs view.
type Props struct {
	// LaunchID identifies the launch; URLs below already contain it.
	LaunchID string
	// Banner is shown when the EHR asked for a patient banner (need_patient_banner).
	Banner *Banner
	// Rows are the results, newest first; entered-in-error results are already left out.
	Rows []Row
	// Total is len(Rows); shown as "N results".
	Total int
	// Incomplete is true when not every page could be fetched: the view must say so plainly.
	Incomplete bool
	// Notices are plain-words messages (errors, OperationOutcome meanings) shown above the table.
	Notices []Notice
	// RefreshURL is the HTMX fragment URL that re-fetches the list (the Retry/Refresh button).
	RefreshURL string
	// LogoutURL is where the Sign out button posts (HTMX, with the CSRF header); empty hides it.
	LogoutURL string
	// CSRFHeader is the name and value HTMX must send on requests (hx-headers), if any.
	CSRFHeaderName  string
	CSRFHeaderValue string
	// Generated is when the list was fetched, already formatted in the EHR time zone.
	Generated string

	// Mode selects the view: every result (the zero value), the summary or one analyte.
	Mode Mode
	// BasePath is the labs page of this launch, "/l/<launch id>"; links, filters and
	// polling are built on it. Empty renders the plain list without controls.
	BasePath string
	// Filter is the current filter; Statuses are the statuses offered in its status list.
	Filter   Filter
	Statuses []string
	// Shown is how many results pass the filter; Total counts them all.
	Shown int
	// Summary is set in ModeSummary, Analyte in ModeAnalyte, Flowsheet in
	// ModeFlowsheet; List is the page of Rows that ModeList shows.
	List      *ListPager
	Summary   *Summary
	Analyte   *Analyte
	Flowsheet *Flowsheet
	// Loading is set while later pages are still being fetched; the view
	// then polls LiveURL for its updates.
	Loading *Loading
	LiveURL string
	// BannerPending reserves the banner's space while the patient is still loading.
	BannerPending bool
	// TimeZone names the zone every time is shown in, e.g. "America/Chicago".
	TimeZone string
}

// Banner is the patient banner.
type Banner struct {
	Name      string
	BirthDate string // already formatted, e.g. 1975-03-02
	Sex       string // e.g. Female
	MRN       string // empty when absent
}

// NoticeLevel says how a notice is styled and announced.
type NoticeLevel string

// Notice levels.
const (
	NoticeInfo    NoticeLevel = "info"
	NoticeWarning NoticeLevel = "warning"
	NoticeError   NoticeLevel = "error"
)

// Notice is one message above the result table.
type Notice struct {
	Level NoticeLevel
	Text  string
}

// Flag is an interpretation flag.
type Flag string

// Interpretation flags as shown; Flag("") means normal or unknown.
const (
	FlagNone          Flag = ""
	FlagHigh          Flag = "H"
	FlagLow           Flag = "L"
	FlagCriticalHigh  Flag = "HH"
	FlagCriticalLow   Flag = "LL"
	FlagAbnormal      Flag = "A"
	FlagCriticalOther Flag = "AA"
)

// Row is one result.
type Row struct {
	// ID is the Observation id (used for data-testid and anchors).
	ID string
	// Name is the test name (code.text, else the first coding's display, else the code).
	Name string
	// Value is the value as text: "5.4", "Positive", "see note"; empty when Absent.
	Value string
	// Unit is the UCUM unit or unit text as sent.
	Unit string
	// Absent, when set, explains why no value is present (dataAbsentReason), e.g. "Not performed".
	Absent string
	// Components are the parts of a multi-component result (e.g. blood pressure).
	Components []Component
	// Range is the reference range as text: "3.5–5.1", "≥ 40", "< 150".
	Range string
	// Flag is the interpretation flag; FlagText is its words, e.g. "High", "Critical low".
	Flag     Flag
	FlagText string
	// FlagHint is set when the flag was computed from the reference range
	// because the lab sent none: "outside 3.5–5.1", "below 60", "above 200".
	FlagHint string
	// Collected is the collection time, formatted; CollectedISO is its machine form for <time datetime>.
	Collected    string
	CollectedISO string
	// Status is "final", "preliminary", "corrected", "amended", ...
	Status string
	// StatusNote is a visible marker for non-final statuses, e.g. "Preliminary", "Corrected"; empty for final.
	StatusNote string
	// Notes are the result's notes (Observation.note), as sent.
	Notes []string
	// Specimen and Performer are the display texts of the specimen and the
	// performing lab; empty when not sent.
	Specimen, Performer string
	// Issued is when the result was released, formatted like Collected;
	// IssuedISO is its RFC 3339 form.
	Issued, IssuedISO string
}

// Component is one part of a multi-component result.
type Component struct {
	Name     string
	Value    string
	Unit     string
	Absent   string
	Range    string
	Flag     Flag
	FlagText string
}
