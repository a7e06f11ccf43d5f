package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served on the control address of --profile-server
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ivsrt/ivsrt/api"
	"github.com/ivsrt/ivsrt/store/sqlite"
	"github.com/ivsrt/ivsrt/token"
)

// serveBaseline answers every request with an empty JSON object and no
// checks at all: the floor under which no server on this machine can go
// with the same clients.
func serveBaseline(addr string) error {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body as any server must, so the connection can be reused.
		var buf [4096]byte
		for {
			if _, err := r.Body.Read(buf[:]); err != nil {
				break
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	})
	return serveUntilSignal(addr, h, nil)
}

// serveProfiled runs the ivsrt API wired as `ivsrt serve` wires it, and
// serves net/http/pprof on control so that the benchmark can take a CPU
// profile of the server alone, phase by phase.
func serveProfiled(addr, control, dataDir, keyID, secret string) error {
	ctx := context.Background()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	pageKey := make([]byte, 32)
	rand.Read(pageKey)
	signingKey, err := token.LoadOrCreateKey(filepath.Join(dataDir, "token-signing-key.pem"))
	if err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, filepath.Join(dataDir, "ivsrt.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	publicURL := "http://" + addr
	eventsURL, whipURL := api.EndpointURLs(publicURL)
	issuer := token.NewIssuer(signingKey, token.WithEventsURL(eventsURL), token.WithWHIPURL(whipURL))
	verifier := &api.SigV4Verifier{
		Credentials: []api.Credential{{AccessKeyID: keyID, SecretAccessKey: secret}},
		Service:     "ivs",
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := api.NewServer(db, issuer, verifier, api.Config{
		Region:        region,
		AccountID:     "123456789012",
		PublicURL:     publicURL,
		PaginationKey: pageKey,
	}, api.WithLogger(logger))
	if err != nil {
		return err
	}
	return serveUntilSignal(addr, srv, func() error {
		l, err := net.Listen("tcp", control)
		if err != nil {
			return err
		}
		go http.Serve(l, http.DefaultServeMux)
		return nil
	})
}

// serveUntilSignal serves h on addr with the timeouts `ivsrt serve` uses,
// until SIGTERM or SIGINT.
func serveUntilSignal(addr string, h http.Handler, also func() error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if also != nil {
		if err := also(); err != nil {
			l.Close()
			return err
		}
	}
	s := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
