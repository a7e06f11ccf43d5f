package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt/web/webtest"
)

// The firewall test runs a server in one network namespace and its
// clients in another, joined by a veth pair, with a firewall in the
// clients' namespace that lets out nothing but TCP to the API port and the
// TURN ports: no UDP at all, no ICE-TCP to the media port. The way to the
// media is the relay, or nothing. The clients' part runs in this test
// binary started again inside the clients' namespace.

const (
	netnsChildEnv = "IVSRT_TEST_NETNS_CLIENT" // set in the clients' part: the server's URL
	netnsIfaceEnv = "IVSRT_TEST_NETNS_IFACE"  // and the name of their interface
	netnsAPIPort  = "7870"
	netnsTURNPort = "3478"
	netnsTLSPort  = "5349"
	netnsRTCPort  = "7881"
)

// TestTURNThroughFirewall: clients that may reach the server's API and
// TURN ports over TCP, and nothing else, publish and subscribe through
// the embedded TURN server, over TURN/TCP and over TURN/TLS; without the
// relay they cannot connect at all.
func TestTURNThroughFirewall(t *testing.T) {
	if base := os.Getenv(netnsChildEnv); base != "" {
		netnsClients(t, base)
		return
	}
	if testing.Short() {
		t.Skip("builds the server and runs it in network namespaces")
	}
	netnsNeed(t)
	bin := cliBinary(t)
	dir := t.TempDir()
	id := fmt.Sprintf("%d", os.Getpid()%10000)
	srvNS, cliNS := "ivsrt-srv-"+id, "ivsrt-cli-"+id
	serverIP, clientIP := "10.77.0.1", "10.77.0.2"
	ipCmd := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{srvNS, cliNS} {
		exec.Command("ip", "netns", "del", ns).Run() // a crashed run's
		ipCmd("netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		ipCmd("-n", ns, "link", "set", "lo", "up")
	}
	ipCmd("link", "add", "vs"+id, "netns", srvNS, "type", "veth", "peer", "name", "vc"+id, "netns", cliNS)
	ipCmd("-n", srvNS, "addr", "add", serverIP+"/24", "dev", "vs"+id)
	ipCmd("-n", cliNS, "addr", "add", clientIP+"/24", "dev", "vc"+id)
	ipCmd("-n", srvNS, "link", "set", "vs"+id, "up")
	ipCmd("-n", cliNS, "link", "set", "vc"+id, "up")

	// The clients' firewall: out to the server, TCP to the API and TURN
	// ports only; in, only what answers that (a firewall that let the
	// server's ICE checks in would let their answers out).
	rules := fmt.Sprintf(`table inet clients {
	chain out {
		type filter hook output priority 0; policy drop;
		oif "lo" accept
		ct state established,related accept
		ip daddr %s tcp dport { %s, %s, %s } accept
	}
	chain in {
		type filter hook input priority 0; policy drop;
		iif "lo" accept
		ct state established,related accept
	}
}
`, serverIP, netnsAPIPort, netnsTURNPort, netnsTLSPort)
	nft := exec.Command("ip", "netns", "exec", cliNS, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(rules)
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}

	// TURN over TLS with a certificate for the server's address, signed
	// by a CA the clients trust.
	caFile, certFile, keyFile := netnsCertificates(t, dir, serverIP)
	base := "http://" + serverIP + ":" + netnsAPIPort
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	server := exec.Command("ip", "netns", "exec", srvNS, bin, "serve", "--listen", serverIP+":"+netnsAPIPort,
		"--data", filepath.Join(dir, "data"), "--access-key-id", testAccessKeyID, "--secret-access-key", testSecretAccessKey,
		"--rtc-udp-port", netnsRTCPort, "--rtc-tcp-port", netnsRTCPort,
		"--turn-udp-port", netnsTURNPort, "--turn-tls-port", netnsTLSPort, "--turn-cert", certFile, "--turn-key", keyFile,
		"--log-level", "info")
	server.Stdout, server.Stderr = logFile, logFile
	server.Env = netnsEnv()
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		server.Process.Kill()
		server.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("server log:\n%s", log)
		}
	})

	// The clients, inside their namespace.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	clients := exec.CommandContext(ctx, "ip", "netns", "exec", cliNS, os.Args[0],
		"-test.run", "^TestTURNThroughFirewall$", "-test.v", "-test.count=1")
	clients.Env = append(netnsEnv(), netnsChildEnv+"="+base, netnsIfaceEnv+"=vc"+id, "SSL_CERT_FILE="+caFile)
	out, err := clients.CombinedOutput()
	t.Logf("the clients' namespace:\n%s", out)
	if err != nil {
		t.Fatalf("the clients failed: %v", err)
	}
}

// netnsNeed skips the test where namespaces and nft are not to be had,
// unless in CI, where it fails.
func netnsNeed(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, cmd := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, cmd)
		}
	}
	if len(missing) == 0 {
		if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
			missing = append(missing, fmt.Sprintf("network namespaces (%v: %s)", err, out))
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("needs %s", strings.Join(missing, ", "))
		}
		t.Skipf("needs %s", strings.Join(missing, ", "))
	}
}

// netnsEnv is this process's environment without IVSRT_ settings.
func netnsEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IVSRT_") {
			env = append(env, kv)
		}
	}
	return env
}

// netnsCertificates makes a CA and a certificate it signs for ip, and
// returns the files of the CA's certificate and of the server's
// certificate and key.
func netnsCertificates(t *testing.T, dir, ip string) (caFile, certFile, keyFile string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, key := newKey(), newKey()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ivsrt test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip}, IPAddresses: []net.IP{net.ParseIP(ip)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("turn.pem", "CERTIFICATE", leafDER), write("turn-key.pem", "EC PRIVATE KEY", keyDER)
}

var netnsLink = regexp.MustCompile(`^<([^>]+)>; rel="ice-server"; username="([^"]*)"; credential="([^"]*)"`)

// netnsClients is the clients' part, in their namespace: base is the
// server's URL.
func netnsClients(t *testing.T, base string) {
	ctx := testContext(t)
	// No connection is kept between requests: one kept from before the
	// clients' address changes would hang.
	httpClient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	c := ivsrealtime.NewFromConfig(aws.Config{Region: testRegion, HTTPClient: httpClient,
		Credentials: credentials.NewStaticCredentialsProvider(testAccessKeyID, testSecretAccessKey, "")},
		func(o *ivsrealtime.Options) { o.BaseEndpoint = aws.String(base) })
	var stage string
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("behind-a-firewall")})
		if err == nil {
			stage = aws.ToString(out.Stage.Arn)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server does not answer: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	token := func(user string) (string, string) {
		out, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stage), UserId: aws.String(user)})
		if err != nil {
			t.Fatalf("CreateParticipantToken: %v", err)
		}
		return aws.ToString(out.ParticipantToken.Token), aws.ToString(out.ParticipantToken.ParticipantId)
	}
	// The ICE servers, as a WHIP client finds them: OPTIONS with its token.
	iceServers := func(tok string) []webrtc.ICEServer {
		req, _ := http.NewRequestWithContext(ctx, http.MethodOptions, base+"/whip", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatalf("OPTIONS /whip: %v", err)
		}
		resp.Body.Close()
		var out []webrtc.ICEServer
		for _, l := range resp.Header.Values("Link") {
			if m := netnsLink.FindStringSubmatch(l); m != nil {
				out = append(out, webrtc.ICEServer{URLs: []string{m[1]}, Username: m[2], Credential: m[3]})
			}
		}
		if len(out) != 3 {
			t.Fatalf("OPTIONS /whip gave ICE servers %+v, want TURN over UDP, TCP and TLS", out)
		}
		return out
	}
	only := func(servers []webrtc.ICEServer, scheme, transport string) []webrtc.ICEServer {
		var out []webrtc.ICEServer
		for _, s := range servers {
			if strings.HasPrefix(s.URLs[0], scheme+":") && strings.HasSuffix(s.URLs[0], "transport="+transport) {
				out = append(out, s)
			}
		}
		return out
	}

	// Without the relay there is no way in.
	t.Run("no relay", func(t *testing.T) {
		tok, _ := token("direct")
		pc := newSynthPC(t, func(se *webrtc.SettingEngine, _ *webrtc.Configuration) {
			se.SetIPFilter(nil)
			se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
		})
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
		connected := make(chan struct{}, 1)
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			if s == webrtc.PeerConnectionStateConnected {
				connected <- struct{}{}
			}
		})
		if _, err := exchangeSDP(t, pc, base+"/whip", tok); err != nil {
			t.Fatalf("WHIP: %v", err)
		}
		select {
		case <-connected:
			t.Fatal("a client connected without the relay: the firewall lets media through")
		case <-time.After(8 * time.Second):
		}
	})

	// Two Chromium pages of the join page: the browser client relays
	// through the TURN servers of its joined message, as nothing else
	// gets through.
	t.Run("Chromium", func(t *testing.T) {
		aliceTok, aliceID := token("alice")
		bobTok, bobID := token("bob")
		// The camera is for secure origins: this one is, for the test.
		b := webtest.NewBrowser(t, chromedp.Flag("unsafely-treat-insecure-origin-as-secure", base))
		alice, bob := b.NewTab("alice"), b.NewTab("bob")
		alice.Navigate(base + "/join?token=" + url.QueryEscape(aliceTok))
		bob.Navigate(base + "/join?token=" + url.QueryEscape(bobTok))
		browserCheckVideo(t, alice, bobID)
		browserCheckVideo(t, bob, aliceID)

		// The clients' network changes (a new address, the old one gone,
		// as Wi-Fi to cellular): the pages restart ICE in their sessions
		// and the video goes on, without new publications.
		iface := os.Getenv(netnsIfaceEnv)
		// The new address must outlive the old one, its primary.
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+iface+"/promote_secondaries", []byte("1"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"addr", "add", "10.77.0.3/24", "dev", iface}, {"addr", "del", "10.77.0.2/24", "dev", iface}} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		changed := time.Now()
		for _, tt := range []struct {
			tab   *webtest.Tab
			other string
		}{{alice, bobID}, {bob, aliceID}} {
			frames := func() int {
				return webtest.Eval[int](tt.tab, browserTile(tt.other)+`.querySelector("video").getVideoPlaybackQuality().totalVideoFrames`)
			}
			deadline := time.Now().Add(40 * time.Second)
			for {
				before := frames()
				time.Sleep(time.Second)
				if frames() > before+5 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: the video of %s did not come back after the address changed", tt.tab.Name, tt.other)
				}
			}
			t.Logf("%s: the video of %s goes on %v after the address changed", tt.tab.Name, tt.other, time.Since(changed).Round(100*time.Millisecond))
		}
		out, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
		if err != nil {
			t.Fatal(err)
		}
		session := aws.ToString(out.Stage.ActiveSessionId)
		for _, id := range []string{aliceID, bobID} {
			events, err := c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(stage),
				SessionId: aws.String(session), ParticipantId: aws.String(id)})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range events.Events {
				names = append(names, string(e.Name))
			}
			if n := strings.Count(strings.Join(names, " "), "PUBLISH_STARTED"); n != 1 || slices.Contains(names, "PUBLISH_STOPPED") {
				t.Errorf("events of %s %v: want one PUBLISH_STARTED and no PUBLISH_STOPPED (an ICE restart, not a new session)", id, names)
			}
		}
	})

	for _, tt := range []struct{ name, scheme, transport string }{
		{"TURN over TCP", "turn", "tcp"},
		{"TURN over TLS", "turns", "tcp"},
		{"TURN over UDP (blocked)", "turn", "udp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pubTok, pubID := token("publisher")
			subTok, _ := token("viewer")
			pubServers, subServers := only(iceServers(pubTok), tt.scheme, tt.transport), only(iceServers(subTok), tt.scheme, tt.transport)
			if tt.transport == "udp" {
				pc := newSynthPC(t, viaTURN(pubServers))
				pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
				o, _ := pc.CreateOffer(nil)
				gathered := webrtc.GatheringCompletePromise(pc)
				pc.SetLocalDescription(o)
				<-gathered
				if strings.Contains(pc.LocalDescription().SDP, "typ relay") {
					t.Fatal("a relay was allocated over UDP through a firewall that drops UDP")
				}
				return
			}
			pub := synthPublish(t, base, pubTok, viaTURN(pubServers))
			pair, err := pub.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
			if err != nil || pair == nil || pair.Local.Typ != webrtc.ICECandidateTypeRelay {
				t.Fatalf("the publisher's selected pair %v (%v), want a relayed local candidate", pair, err)
			}
			sub, err := synthSubscribe(t, base, subTok, pubID, viaTURN(subServers))
			if err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			sub.waitMedia(t, 50, 20*time.Second)
			t.Logf("%s: media through the relay, byte for byte", tt.name)
			// The relay's two participants, in the metrics.
			resp, err := httpClient.Get(base + "/metrics")
			if err != nil {
				t.Fatalf("GET /metrics: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			n := -1 // absent
			if m := regexp.MustCompile(`(?m)^ivsrt_turn_participants (\d+)`).FindSubmatch(body); m != nil {
				n, _ = strconv.Atoi(string(m[1]))
			}
			if n < 2 {
				t.Errorf("ivsrt_turn_participants %d (-1: absent), want the publisher and the viewer at least", n)
			}
		})
	}
}
