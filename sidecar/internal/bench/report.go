package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one run.
type Report struct {
	Scenario string `json:"scenario"`
	Target   string `json:"target"`
	// Targets are the subscribers' servers when not Target alone.
	Targets   []string       `json:"targets,omitempty"`
	Params    map[string]any `json:"params"`
	Started   time.Time      `json:"started"`
	Completed bool           `json:"completed"`
	Error     string         `json:"error,omitempty"`
	// Elapsed is the measured window in seconds.
	Elapsed float64 `json:"elapsed_seconds"`
	// Ops are the deliveries, requests or messages counted in the window;
	// OpsUnit names them; Rate is Ops per second.
	Ops          int64              `json:"ops"`
	OpsUnit      string             `json:"ops_unit"`
	Rate         float64            `json:"rate"`
	Errors       int64              `json:"errors"`
	Lost         int64              `json:"lost"`
	Duplicates   int64              `json:"duplicates"`
	Latencies    []Latency          `json:"latencies"`
	Server       *ServerStats       `json:"server,omitempty"`
	Client       *ClientStats       `json:"client,omitempty"`
	Metrics      map[string]float64 `json:"metrics"`
	Checks       []Check            `json:"checks"`
	Notes        []string           `json:"notes,omitempty"`
	ErrorSamples []string           `json:"error_samples,omitempty"`
	Timeline     []Sample           `json:"timeline"`
}

// ServerStats is the target process over the window (CPU in percent of
// one core; the children are the plugin processes).
type ServerStats struct {
	PID             int     `json:"pid"`
	CPUPercent      float64 `json:"cpu_percent"`
	SysPercent      float64 `json:"sys_percent"` // of CPUPercent, in the kernel
	CPUMicrosPerOp  float64 `json:"cpu_us_per_op"`
	SysMicrosPerOp  float64 `json:"sys_us_per_op"`
	ChildCPUPercent float64 `json:"child_cpu_percent"`
	RSSStart        int64   `json:"rss_start_bytes"`
	RSSEnd          int64   `json:"rss_end_bytes"`
	RSSPeak         int64   `json:"rss_peak_bytes"`
	ChildRSS        int64   `json:"child_rss_bytes"`
	Threads         int     `json:"threads"`
}

// ClientStats is the generator itself over the window.
type ClientStats struct {
	CPUPercent     float64 `json:"cpu_percent"`
	SysPercent     float64 `json:"sys_percent"` // of CPUPercent, in the kernel
	CPUMicrosPerOp float64 `json:"cpu_us_per_op"`
	SysMicrosPerOp float64 `json:"sys_us_per_op"`
}

// Check is one performance target and whether the run met it.
type Check struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	OK   bool   `json:"ok"`
}

// Sample is one second of the run.
type Sample struct {
	T         float64 `json:"t"`
	Ops       int64   `json:"ops"`
	Rate      float64 `json:"rate"`
	Conns     int64   `json:"conns"`
	Errors    int64   `json:"errors"`
	Lost      int64   `json:"lost"`
	ServerCPU float64 `json:"server_cpu_percent"`
	ServerRSS int64   `json:"server_rss_bytes"`
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// WriteText writes the plain-text report with vegeta-style buckets.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "sidestream bench %s → %s\n", r.Scenario, r.Target)
	if len(r.Targets) > 0 {
		fmt.Fprintf(&b, "subscribers %s\n", strings.Join(r.Targets, " "))
	}
	fmt.Fprintf(&b, "params      %s\n", formatParams(r.Params))
	status := "completed"
	if !r.Completed {
		status = "NOT completed: " + r.Error
	}
	fmt.Fprintf(&b, "window      %.2fs (%s)\n", r.Elapsed, status)
	fmt.Fprintf(&b, "%-11s %s (%s/s)\n", r.OpsUnit, group(float64(r.Ops)), group(r.Rate))
	fmt.Fprintf(&b, "errors      %d   lost %d   duplicates %d\n", r.Errors, r.Lost, r.Duplicates)
	if s := r.Server; s != nil {
		fmt.Fprintf(&b, "server      pid %d  cpu %.0f%% of a core (sys %.0f%%, plugins %.0f%%)  rss %s → %s (peak %s, plugins %s)  threads %d\n",
			s.PID, s.CPUPercent, s.SysPercent, s.ChildCPUPercent, iec(s.RSSStart), iec(s.RSSEnd), iec(s.RSSPeak), iec(s.ChildRSS), s.Threads)
	}
	if c := r.Client; c != nil {
		fmt.Fprintf(&b, "client      cpu %.0f%% of a core (sys %.0f%%)\n", c.CPUPercent, c.SysPercent)
	}
	writeCPUPerOp(&b, r)
	for _, k := range sortedKeys(r.Metrics) {
		fmt.Fprintf(&b, "%-28s %s\n", k, trimFloat(r.Metrics[k]))
	}
	for _, l := range r.Latencies {
		writeLatency(&b, l)
	}
	if len(r.Checks) > 0 {
		b.WriteString("\ntargets\n")
		for _, c := range r.Checks {
			mark := "FAIL"
			if c.OK {
				mark = "ok"
			}
			fmt.Fprintf(&b, "  %-4s %-34s want %-16s got %s\n", mark, c.Name, c.Want, c.Got)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for _, e := range r.ErrorSamples {
		fmt.Fprintf(&b, "error: %s\n", e)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeLatency(b *strings.Builder, l Latency) {
	fmt.Fprintf(b, "\nlatency %s (%d values)\n", l.Name, l.Count)
	fmt.Fprintf(b, "  min %s  mean %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		ms(l.Min), ms(l.Mean), ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max))
	tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "Bucket\t\t#\t%\tHistogram")
	for _, k := range l.Buckets {
		to := "+Inf"
		if k.To != nil {
			to = ms(*k.To)
		}
		fmt.Fprintf(tw, "[%s,\t%s]\t%d\t%.2f%%\t%s\n", ms(k.From), to, k.Count, k.Percent, strings.Repeat("#", int(k.Percent*0.75)))
	}
	_ = tw.Flush()
}

// ms formats milliseconds like a Go duration ("250µs", "12.5ms", "1.2s").
func ms(v float64) string {
	d := time.Duration(v * float64(time.Millisecond))
	switch {
	case d == 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

// iec formats bytes as KiB/MiB/GiB.
func iec(n int64) string {
	const k = 1024
	switch {
	case n >= k*k*k:
		return fmt.Sprintf("%.2f GiB", float64(n)/(k*k*k))
	case n >= k*k:
		return fmt.Sprintf("%.1f MiB", float64(n)/(k*k))
	case n >= k:
		return fmt.Sprintf("%.1f KiB", float64(n)/k)
	}
	return fmt.Sprintf("%d B", n)
}

// group formats a number with thousands separators.
func group(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func trimFloat(v float64) string {
	if v == float64(int64(v)) && v < 1e15 && v > -1e15 {
		return group(v)
	}
	return fmt.Sprintf("%.3f", v)
}

func formatParams(p map[string]any) string {
	var parts []string
	for _, k := range sortedKeys(p) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, p[k]))
	}
	return strings.Join(parts, " ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// writeCPUPerOp writes the CPU each op cost, split into the server's and
// the generator's, each with its kernel (syscall) share.
func writeCPUPerOp(b *strings.Builder, r *Report) {
	c := r.Client
	if c == nil || r.Ops <= 0 {
		return
	}
	b.WriteString("cpu per op  ")
	total := c.CPUMicrosPerOp
	if s := r.Server; s != nil {
		fmt.Fprintf(b, "server %.1f µs (user %.1f, sys %.1f) + ", s.CPUMicrosPerOp, s.CPUMicrosPerOp-s.SysMicrosPerOp, s.SysMicrosPerOp)
		total += s.CPUMicrosPerOp
	}
	fmt.Fprintf(b, "generator %.1f µs (user %.1f, sys %.1f) = %.1f µs\n", c.CPUMicrosPerOp, c.CPUMicrosPerOp-c.SysMicrosPerOp, c.SysMicrosPerOp, total)
}
