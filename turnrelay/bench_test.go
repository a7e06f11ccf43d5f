package turnrelay_test

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt/turnrelay"
)

// BenchmarkRelay sends media-sized packets (1200 bytes) from a client to
// the media address one way, directly (the baseline) and through the
// embedded TURN server over UDP, TCP and TLS, keeping up to 64 in flight.
// Besides time per packet it reports the CPU the whole process spent
// (client, relay, receiver) as the share of a core that 100 Mbit/s of
// such packets costs: the relay's cost is the difference from the
// direct baseline.
func BenchmarkRelay(b *testing.B) {
	const size, window = 1200, 64
	for _, mode := range []string{"direct", "udp", "tcp", "tls"} {
		b.Run(mode, func(b *testing.B) {
			f := start(b, 0)
			var send func([]byte) error
			if mode == "direct" {
				conn, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				send = func(p []byte) error { _, err := conn.WriteTo(p, f.media.LocalAddr()); return err }
			} else {
				user, pass := turnrelay.Credentials(secret, "bench-"+mode, time.Now().Add(time.Hour))
				relay, err := f.client(b, mode, user, pass).Allocate()
				if err != nil {
					b.Fatal(err)
				}
				defer relay.Close()
				send = func(p []byte) error { _, err := relay.WriteTo(p, f.media.LocalAddr()); return err }
			}
			credits := make(chan struct{}, window)
			for range window {
				credits <- struct{}{}
			}
			received := make(chan int, 1)
			go func() {
				buf := make([]byte, 2048)
				n := 0
				for n < b.N {
					f.media.SetReadDeadline(time.Now().Add(time.Second))
					if _, _, err := f.media.ReadFrom(buf); err != nil {
						break
					}
					n++
					credits <- struct{}{}
				}
				received <- n
			}()
			payload := make([]byte, size)
			var before syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			b.SetBytes(size)
			b.ResetTimer()
			for range b.N {
				select {
				case <-credits:
				case <-time.After(time.Second): // a packet lost: go on
				}
				if err := send(payload); err != nil {
					b.Fatal(err)
				}
			}
			got := <-received
			b.StopTimer()
			var after syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
			bits := float64(got) * size * 8
			if got > 0 {
				// CPU seconds per bit, times 100 Mbit/s: the share of a core.
				b.ReportMetric(cpu.Seconds()/bits*100e6*100, "core%/100Mbps")
			}
			b.ReportMetric(float64(b.N-got)/float64(b.N)*100, "lost%")
		})
	}
}
