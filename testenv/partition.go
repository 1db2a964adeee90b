package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// partitionTable is the nftables table (family bridge) in the switch namespace
// that holds the partition's rules.
const partitionTable = "shoal_lab"

const partitionFile = "partition.json"

// Partition cuts the lab into groups: nodes in different groups exchange no
// packet, in either direction, while nodes in one group still do, and a node in
// no group still reaches every node. The switch drops the frames silently, as a
// dead network would: no ICMP, no reset, and connections already open hang.
// It replaces any earlier partition; Heal ends it.
func (l *Lab) Partition(ctx context.Context, groups ...[]*Machine) error {
	names := make([][]string, len(groups))
	group := map[string]int{}
	for i, g := range groups {
		for _, m := range g {
			if _, err := l.Machine(m.Name); err != nil {
				return fmt.Errorf("partition: %w", err)
			}
			if j, ok := group[m.Name]; ok && j != i {
				return fmt.Errorf("partition: %s is in two groups", m.Name)
			}
			group[m.Name] = i
			names[i] = append(names[i], m.Name)
		}
	}
	var rules strings.Builder
	for i, from := range names {
		for j, to := range names {
			if i == j {
				continue
			}
			for _, a := range from {
				for _, b := range to {
					fmt.Fprintf(&rules, "\t\tiifname %q oifname %q drop\n", a, b)
				}
			}
		}
	}
	script := fmt.Sprintf("table bridge %[1]s\ndelete table bridge %[1]s\n"+
		"table bridge %[1]s {\n\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n%[2]s\t}\n}\n",
		partitionTable, rules.String())
	if err := l.nft(ctx, script); err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	data, _ := json.Marshal(names)
	if err := os.WriteFile(filepath.Join(l.Dir, partitionFile), data, 0o644); err != nil {
		return fmt.Errorf("partition: record groups: %w", err)
	}
	return nil
}

// Heal ends the partition: every node reaches every other again.
func (l *Lab) Heal(ctx context.Context) error {
	if err := l.nft(ctx, fmt.Sprintf("table bridge %[1]s\ndelete table bridge %[1]s\n", partitionTable)); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	if err := os.Remove(filepath.Join(l.Dir, partitionFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("heal: %w", err)
	}
	return nil
}

// Partitioned is the groups of the partition in force, or nil when there is none.
func (l *Lab) Partitioned() [][]string {
	data, err := os.ReadFile(filepath.Join(l.Dir, partitionFile))
	if err != nil {
		return nil
	}
	var groups [][]string
	_ = json.Unmarshal(data, &groups)
	return groups
}

// nft runs an nft script in the switch namespace, as one transaction.
func (l *Lab) nft(ctx context.Context, script string) error {
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+l.SwitchNS(), "--", "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in the switch: %w: %s", err, out)
	}
	return nil
}
