package main

import (
	"context"
	"fmt"

	"github.com/ivsrt/ivsrt/api"
	"github.com/ivsrt/ivsrt/events"
)

// startRelay starts delivering the event stream to the configured sinks,
// and pruning it after the retention, even when there is no sink. Close
// the relay, then the sinks, to stop.
func (m *Main) startRelay(ctx context.Context) (*events.Relay, *sinkSet, error) {
	sinks, err := m.buildSinks()
	if err != nil {
		return nil, nil, err
	}
	retention := m.Config.EventRetention
	if retention == 0 {
		retention = -1 // for ever
	}
	relay, err := events.NewRelay(m.DB, events.RelayConfig{
		Region:    m.Config.Region,
		AccountID: m.Config.AccountID,
		Retention: retention,
	}, sinks.configs, events.WithRelayLogger(m.Logger.With("component", "relay")), events.WithDeliveryObserver(m.Metrics))
	if err != nil {
		sinks.close()
		return nil, nil, err
	}
	if err := relay.Start(ctx); err != nil {
		sinks.close()
		return nil, nil, fmt.Errorf("start event delivery: %w", err)
	}
	for _, s := range sinks.configs {
		m.Logger.Info("delivering events", "sink", s.Name, "kind", s.Kind, "target", s.Target)
	}
	return relay, sinks, nil
}

// newEventHandlers returns the handlers of the event stream (GET
// /v1/events/stream) and of its delivery API (/v1/events/sinks,
// /v1/events/dead-letters...). Clients sign their requests as for the API;
// with --dev, which trusts every caller, they are open to anyone (so that a
// browser's EventSource, which cannot sign, can follow the stream).
func (m *Main) newEventHandlers(verifier *api.SigV4Verifier) (*events.Handler, *events.AdminHandler) {
	cfg := events.Config{Region: m.Config.Region, AccountID: m.Config.AccountID}
	if !m.Config.Dev {
		cfg.Authorize = verifier.Authorize
	}
	log := m.Logger.With("component", "events")
	var control events.DeliveryControl = m.Relay
	if m.delivery != nil { // in a cluster
		control = m.delivery
	}
	return events.NewHandler(m.DB, cfg, events.WithLogger(log)), events.NewAdminHandler(control, m.DB, cfg, log)
}
