package server

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/labstack/echo/v4"

	"smartlabs/components/errorpage"
	"smartlabs/server/session"
)

// cacheOwner is the result cache's owner key of a browser: a hash, so the
// cache holds no browser id, and "" for none (it owns nothing).
func cacheOwner(browser string) string {
	if browser == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("labscache-owner\x00" + browser))
	return hex.EncodeToString(sum[:16])
}

// signedOutPath shows the signed-out page; HTMX logouts are sent there.
const signedOutPath = "/signed-out"

// handleLogout handles "POST /l/:launch/logout": it deletes the launch's
// record and destroys the browser's session, so the old cookie names nothing
// any more. The route requires the anti-forgery header (requireAntiForgery),
// so another site cannot sign the clinician out.
func (s *Server) handleLogout(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("launch")
	if !launchIDRe.MatchString(id) {
		return session.ErrNoLaunch
	}
	// DeleteLaunch refuses a launch of another browser, so a launch id alone signs nobody out.
	if err := s.sessions.DeleteLaunch(ctx, id); err != nil {
		return err
	}
	// The results (PHI) of this launch and of every other launch of this
	// browser leave the server's memory now, not at the cache's idle expiry:
	// destroying the session makes all of the browser's launches unreadable.
	s.labsCache.Forget(id)
	s.labsCache.ForgetOwner(cacheOwner(s.sessions.BrowserID(ctx)))
	if err := s.sessions.Logout(ctx); err != nil {
		return err
	}
	// The browser drops what it cached or stored for us (patient pages among
	// them). "cookies" is left out: it clears every cookie of the whole
	// registrable domain, other applications' too, while scs already expires ours.
	h := c.Response().Header()
	h.Set("Clear-Site-Data", `"cache", "storage"`)
	if isHTMX(c) {
		h.Set("HX-Redirect", signedOutPath)
		return c.NoContent(http.StatusOK)
	}
	return s.renderSignedOut(c)
}

// handleSignedOut handles "GET /signed-out": the page shown after a logout.
// It reads no session, so it shows nothing about anyone.
func (s *Server) handleSignedOut(c echo.Context) error {
	return s.renderSignedOut(c)
}

func (s *Server) renderSignedOut(c echo.Context) error {
	const title = "You are signed out of smartlabs"
	return render(c, http.StatusOK, errorpage.Page(errorpage.Props{
		Title:   title,
		Message: "smartlabs no longer holds your access to the EHR in this browser. To see results again, reopen smartlabs from the patient's chart.",
		Layout:  s.layoutProps(title + " – smartlabs"),
	}))
}
