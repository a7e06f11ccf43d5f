// Package web serves the browser side of ivsrt from files embedded in the
// binary: the JavaScript client (/client/ivsrt.js), the IVS Stage API
// over it (/client/ivs-stage.js), the join page (/join?token=...), a
// sample app of the IVS Stage API (/ivs-sample) and the web console
// (/console).
//
// The pages hold no secrets and need no build step. The console talks to
// the same ivs-realtime API as the AWS clients, and to the event delivery
// API beside it, signing its requests with SigV4 in the browser, so the
// API's credentials protect it; the join page
// uses the participant token it is given, as any client of the media plane.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
)

// assets are the files served, by path under this folder.
//
//go:embed client/*.js join/*.html join/*.js ivs-sample/*.html ivs-sample/*.js console/*.html console/*.js shared/*.css shared/*.svg
var assets embed.FS

// Config is what the pages need to know of the server.
type Config struct {
	// Region is the region the console signs its API requests for.
	Region string
	// Dev tells the console that the API accepts any signature, so that
	// it signs with placeholder keys instead of asking for them.
	Dev bool
	// PublicURL is the base URL of the media plane (the events WebSocket,
	// WHIP and WHEP), which pages may connect to besides their own host.
	PublicURL string
}

// Handler serves the pages and the client.
type Handler struct {
	files   map[string]*file // by URL path
	config  []byte           // /console/config.json
	connect []string         // origins of the media plane, for connect-src
}

var _ http.Handler = (*Handler)(nil)

// file is one embedded asset, ready to serve.
type file struct {
	data        []byte
	contentType string
	etag        string
	page        bool // an HTML page, rather than a script or style sheet
}

// routes maps URL paths to embedded files. Pages have paths without an
// extension; what they load sits under the page's own path.
var routes = map[string]string{
	"/client/ivsrt.js":     "client/ivsrt.js",
	"/client/ivs-stage.js": "client/ivs-stage.js",
	"/join":                "join/index.html",
	"/ivs-sample":          "ivs-sample/index.html",
	"/ivs-sample/app.js":   "ivs-sample/app.js",
	"/join/join.js":        "join/join.js",
	"/console":             "console/index.html",
	"/console/console.js":  "console/console.js",
	"/console/sigv4.js":    "console/sigv4.js",
	"/console/player.js":   "console/player.js",
	"/shared/ivsrt.css":    "shared/ivsrt.css",
	"/shared/icon.svg":     "shared/icon.svg",
	"/favicon.ico":         "shared/icon.svg",
}

// contentTypes are the types of the embedded files, by extension. They are
// listed here rather than looked up in the system's MIME tables, which
// differ from one machine to another.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": "application/json",
}

// NewHandler returns a Handler for cfg.
func NewHandler(cfg Config) (*Handler, error) {
	h := &Handler{files: make(map[string]*file)}
	for urlPath, name := range routes {
		data, err := fs.ReadFile(assets, name)
		if err != nil {
			return nil, fmt.Errorf("web: %s: %w", name, err)
		}
		h.files[urlPath] = newFile(path.Ext(name), data)
	}
	config, err := json.Marshal(struct {
		Region string `json:"region"`
		Dev    bool   `json:"dev"`
	}{cfg.Region, cfg.Dev})
	if err != nil {
		return nil, err
	}
	h.config = config
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !validHost(u.Host) {
			return nil, fmt.Errorf("web: public URL %q must be an absolute http(s) URL", cfg.PublicURL)
		}
		ws := "ws"
		if u.Scheme == "https" {
			ws = "wss"
		}
		h.connect = []string{u.Scheme + "://" + u.Host, ws + "://" + u.Host}
	}
	return h, nil
}

func newFile(ext string, data []byte) *file {
	sum := sha256.Sum256(data)
	return &file{
		data:        data,
		contentType: contentTypes[ext],
		etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
		page:        ext == ".html",
	}
}

// IsWebRequest reports whether r asks for a page, the client or what the
// pages load: a GET or HEAD of /, /join, /ivs-sample, /console, or a path
// under /client/, /join/, /ivs-sample/, /console/ or /shared/. Everything else belongs to the
// API or the media plane.
func IsWebRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	switch p {
	case "/", "/join", "/ivs-sample", "/console", "/favicon.ico":
		return true
	}
	for _, prefix := range []string{"/client/", "/join/", "/ivs-sample/", "/console/", "/shared/"} {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// ServeHTTP serves the pages, their scripts and styles, and the console's
// configuration.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.setSecurityHeaders(w.Header(), r)
	switch r.URL.Path {
	case "/":
		http.Redirect(w, r, "/console", http.StatusFound)
		return
	case "/join/", "/ivs-sample/", "/console/":
		// A trailing slash is the same page; keep the query (the token).
		target := strings.TrimSuffix(r.URL.Path, "/")
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	case "/console/config.json":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.config))
		return
	}
	f := h.files[r.URL.Path]
	if f == nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	hd.Set("ETag", f.etag)
	if f.page {
		// A page's URL may carry a participant token: keep it out of
		// caches.
		hd.Set("Cache-Control", "no-store")
	} else {
		// Scripts and styles change with the binary: revalidate them
		// (the ETag makes that cheap).
		hd.Set("Cache-Control", "no-cache")
	}
	if strings.HasPrefix(r.URL.Path, "/client/") {
		// The client holds no secrets: apps of any origin may import it
		// (a module script from another origin needs CORS).
		hd.Set("Access-Control-Allow-Origin", "*")
	}
	if r.URL.Path == "/join" || r.URL.Path == "/ivs-sample" {
		hd.Set("Permissions-Policy", "camera=(self), microphone=(self), autoplay=(self), display-capture=(), geolocation=()")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}

// setSecurityHeaders sets the headers every answer carries. The Content
// Security Policy allows the pages' own scripts and styles, API and media
// requests to this host and to the media plane's public URL (WebSocket
// included), and media streams; nothing inline, nothing from elsewhere.
func (h *Handler) setSecurityHeaders(hd http.Header, r *http.Request) {
	connect := []string{"'self'"}
	if validHost(r.Host) {
		// 'self' covers ws: and wss: in current browsers; naming them
		// keeps older ones working.
		connect = append(connect, "ws://"+r.Host, "wss://"+r.Host)
	}
	for _, src := range h.connect {
		if !slices.Contains(connect, src) {
			connect = append(connect, src)
		}
	}
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"media-src 'self' blob: mediastream:; connect-src "+strings.Join(connect, " ")+"; manifest-src 'self'; "+
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer") // join URLs carry tokens
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), display-capture=(), geolocation=()")
}

// validHost reports whether host (from a Host header or URL) is a plain
// host[:port], safe to name in a header.
func validHost(host string) bool {
	if host == "" || len(host) > 255 {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-:[]", c) >= 0) {
			return false
		}
	}
	return true
}
