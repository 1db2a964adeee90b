package dns

import (
	"net/netip"
	"sync"
	"testing"
)

func TestTableReplace(t *testing.T) {
	var table Table
	if _, ok := table.current().lookup([]string{"front"}, "web"); ok {
		t.Fatal("an empty Table knows web")
	}
	table.Replace(Records{"front": {
		"Web.":      {netip.MustParseAddr("10.0.1.2"), netip.MustParseAddr("fd00::2")},
		"tasks.web": {netip.MustParseAddr("::ffff:10.0.1.5")},
		"empty":     nil,
	}})
	v := table.current()
	got, ok := v.lookup([]string{"front"}, "web")
	if !ok || len(got) != 1 || got[0] != netip.MustParseAddr("10.0.1.2") {
		t.Fatalf("web = %v, %v; want the IPv4 address alone, under its canonical name", got, ok)
	}
	got, ok = v.lookup([]string{"front"}, "tasks.web")
	if !ok || len(got) != 1 || got[0] != netip.MustParseAddr("10.0.1.5") {
		t.Fatalf("tasks.web = %v, %v; want the mapped address as IPv4", got, ok)
	}
	if got, ok := v.lookup([]string{"front"}, "empty"); !ok || len(got) != 0 {
		t.Fatalf("empty = %v, %v; want known with no address", got, ok)
	}
	if name, ok := v.reverse([]string{"front"}, netip.MustParseAddr("10.0.1.5")); ok {
		t.Fatalf("10.0.1.5 reverses to %s; only tasks.web names it, which names a set", name)
	}

	table.Replace(Records{"back": {"db": {netip.MustParseAddr("10.0.2.2")}}})
	if _, ok := table.current().lookup([]string{"front"}, "web"); ok {
		t.Fatal("web is still known after a Replace without it")
	}
	if _, ok := v.lookup([]string{"front"}, "web"); !ok {
		t.Fatal("a generation taken before Replace changed")
	}
}

func TestTableKeepsItsOwnCopy(t *testing.T) {
	records := Records{"front": {"web": {netip.MustParseAddr("10.0.1.2")}}}
	var table Table
	table.Replace(records)
	records["front"]["web"][0] = netip.MustParseAddr("10.9.9.9")
	records["front"]["db"] = []netip.Addr{netip.MustParseAddr("10.0.2.2")}
	got, _ := table.current().lookup([]string{"front"}, "web")
	if got[0] != netip.MustParseAddr("10.0.1.2") {
		t.Fatalf("web = %v after the caller changed its map", got)
	}
	if _, ok := table.current().lookup([]string{"front"}, "db"); ok {
		t.Fatal("a name the caller added after Replace is known")
	}
}

// Readers never see a half-built generation: every lookup during a stream of
// Replaces finds a name and its task names from one and the same generation.
func TestTableConcurrentReplace(t *testing.T) {
	gen := func(i int) Records {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		return Records{"front": {"web": {a}, "web.1.aaa": {a}}}
	}
	var table Table
	table.Replace(gen(0))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := table.current()
				vip, ok1 := v.lookup([]string{"front"}, "web")
				task, ok2 := v.lookup([]string{"front"}, "web.1.aaa")
				if !ok1 || !ok2 || vip[0] != task[0] {
					errs <- "a lookup saw two generations"
					return
				}
			}
		}()
	}
	for i := 1; i < 2000; i++ {
		table.Replace(gen(i))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
