package bench

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// WriteHTML writes a self-contained page (inline SVG, no scripts, no
// network) with the latency percentile curves, the per-second rate and
// the server's CPU and RSS, followed by the text report.
func (r *Report) WriteHTML(w io.Writer) error {
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		return err
	}
	data := map[string]any{
		"Title": "sidestream bench " + r.Scenario,
		"Text":  text.String(),
		"Lat":   template.HTML(latencySVG(r.Latencies)),
		"Rate":  template.HTML(timelineSVG(r.Timeline, "rate ("+r.OpsUnit+"/s)", func(s Sample) float64 { return s.Rate })),
		"CPU":   template.HTML(timelineSVG(r.Timeline, "server CPU (% of a core)", func(s Sample) float64 { return s.ServerCPU })),
		"RSS":   template.HTML(timelineSVG(r.Timeline, "server RSS (MiB)", func(s Sample) float64 { return float64(s.ServerRSS) / (1 << 20) })),
	}
	if err := page.Execute(w, data); err != nil {
		return fmt.Errorf("write html: %w", err)
	}
	return nil
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:960px}svg{background:#fafafa;border:1px solid #ddd;margin:.5em 0}
pre{background:#f4f4f4;padding:1em;overflow-x:auto}text{font-size:11px;fill:#333}</style></head>
<body><h1>{{.Title}}</h1>
<h2>Latency by percentile</h2>{{.Lat}}
<h2>Timeline</h2>{{.Rate}}{{.CPU}}{{.RSS}}
<h2>Report</h2><pre>{{.Text}}</pre></body></html>
`))

const (
	svgW, svgH = 900, 260
	padL, padB = 70, 30
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd"}

// latencySVG plots each histogram's latency against percentile on the
// usual HDR axis: x = log10(1/(1-p)), so 90, 99, 99.9 … are evenly apart.
func latencySVG(ls []Latency) string {
	var maxY float64
	for _, l := range ls {
		maxY = max(maxY, l.Max)
	}
	if maxY <= 0 {
		return "<p>no latency values</p>"
	}
	const maxX = 5 // 99.999%
	x := func(p float64) float64 {
		v := math.Min(maxX, math.Log10(1/math.Max(1-p/100, 1e-5)))
		return padL + v/maxX*(svgW-padL-10)
	}
	y := func(v float64) float64 { return svgH - padB - v/maxY*(svgH-padB-10) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" viewBox="0 0 %d %d">`, svgW, svgH, svgW, svgH)
	axes(&b, ms(maxY))
	for i, lbl := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"} {
		fmt.Fprintf(&b, `<text x="%.0f" y="%d">%s</text>`, padL+float64(i)/maxX*(svgW-padL-10)-10, svgH-10, lbl)
	}
	for i, l := range ls {
		var pts []string
		for _, p := range l.Percentiles {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.X), y(p.Y)))
		}
		c := palette[i%len(palette)]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, c, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%d" y="%d" style="fill:%s">%s (p99 %s)</text>`, padL+10, 20+14*i, c, template.HTMLEscapeString(l.Name), ms(l.P99))
	}
	b.WriteString("</svg>")
	return b.String()
}

// timelineSVG plots one figure of the per-second samples.
func timelineSVG(ss []Sample, title string, f func(Sample) float64) string {
	if len(ss) == 0 {
		return ""
	}
	var maxY, maxX float64
	for _, s := range ss {
		maxY, maxX = max(maxY, f(s)), max(maxX, s.T)
	}
	if maxY <= 0 {
		maxY = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" viewBox="0 0 %d %d">`, svgW, svgH, svgW, svgH)
	axes(&b, trimFloat(math.Round(maxY)))
	fmt.Fprintf(&b, `<text x="%d" y="%d">0s</text><text x="%d" y="%d">%.0fs</text>`, padL, svgH-10, svgW-40, svgH-10, maxX)
	var pts []string
	for _, s := range ss {
		px := padL + s.T/math.Max(maxX, 1)*(svgW-padL-10)
		py := svgH - padB - f(s)/maxY*(svgH-padB-10)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, py))
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, palette[0], strings.Join(pts, " "))
	fmt.Fprintf(&b, `<text x="%d" y="20">%s</text></svg>`, padL+10, template.HTMLEscapeString(title))
	return b.String()
}

func axes(b *strings.Builder, top string) {
	fmt.Fprintf(b, `<line x1="%d" y1="10" x2="%d" y2="%d" stroke="#999"/>`, padL, padL, svgH-padB)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>`, padL, svgH-padB, svgW-10, svgH-padB)
	fmt.Fprintf(b, `<text x="4" y="16">%s</text><text x="4" y="%d">0</text>`, template.HTMLEscapeString(top), svgH-padB)
}
