package cluster

import "testing"

func TestResourceID(t *testing.T) {
	for _, tc := range []struct {
		path, id string
		ok       bool
	}{
		{"/whip/node-a.0123", "node-a.0123", true},
		{"/whep/pPPPPPPPPPPP/node-b.99", "node-b.99", true},
		{"/whip", "", false},
		{"/whip/", "", false},
		{"/whip/a/b", "", false},
		{"/whep/pPPPPPPPPPPP", "", false},
		{"/whep/pPPPPPPPPPPP/", "", false},
		{"/whep/p/a/b", "", false},
		{"/events", "", false},
	} {
		id, ok := resourceID(tc.path)
		if id != tc.id || ok != tc.ok {
			t.Errorf("resourceID(%q) = %q, %v; want %q, %v", tc.path, id, ok, tc.id, tc.ok)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{URL: "http://127.0.0.1:7870/", NATSURL: "nats://127.0.0.1:4222"}
	if err := c.setDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.NodeID == "" || c.URL != "http://127.0.0.1:7870" || c.LeaseTTL != DefaultLeaseTTL || c.SubjectPrefix != DefaultSubjectPrefix {
		t.Errorf("defaults: %+v", c)
	}
	for _, bad := range []Config{
		{URL: "127.0.0.1:7870", NATSURL: "nats://x"},
		{URL: "http://127.0.0.1:7870"},
		{URL: "http://127.0.0.1:7870", NATSURL: "nats://x", NodeID: "a.b"},
		{URL: "http://127.0.0.1:7870", NATSURL: "nats://x", NodeID: "a>"},
	} {
		if err := bad.setDefaults(); err == nil {
			t.Errorf("setDefaults(%+v): no error", bad)
		}
	}
}
