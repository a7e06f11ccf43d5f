package cluster

import (
	"context"
	"time"
)

// Lead runs work on one node of the cluster at a time: whichever holds the
// store's lock called name. It tries to take the lock every heartbeat
// interval; once it has it, it calls start, and calls the stop start
// returned when the lock is lost (the connection to the store broke) or the
// node closes. Lead returns at once; the work follows the lock around the
// cluster as nodes come and go.
func (n *Node) Lead(ctx context.Context, name string, start func(ctx context.Context) (stop func(), err error)) {
	n.mu.Lock()
	if n.cancel == nil {
		n.mu.Unlock()
		panic("cluster: Lead before Start")
	}
	n.mu.Unlock()
	n.wg.Go(func() { n.lead(ctx, name, start) })
}

func (n *Node) lead(ctx context.Context, name string, start func(ctx context.Context) (stop func(), err error)) {
	// The node's own lifetime bounds the work's.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		ok, lost, release, err := n.store.TryLead(ctx, name)
		if err != nil && ctx.Err() == nil {
			n.log.Error("cluster: try to lead", "work", name, "err", err)
		}
		if ok {
			n.log.Info("cluster: leading", "work", name)
			stop, err := start(ctx)
			if err != nil {
				n.log.Error("cluster: start leading", "work", name, "err", err)
				release()
			} else {
				select {
				case <-lost:
					n.log.Warn("cluster: lost the lead", "work", name)
				case <-ctx.Done():
				case <-n.done():
				}
				stop()
				release()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-n.done():
			return
		case <-t.C:
		}
	}
}
