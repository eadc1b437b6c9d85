package dispatch

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// simChart draws the simulation's results as an SVG of two panels: the API
// calls of each family, ours at 0% and 5% lost webhooks against the 10 s
// loop, on a log scale; and the detection latency, p50 and p99, of
// delivered events (no loss) and of lost ones (5% lost).
func simChart(results []simResult, n int) []byte {
	const (
		w, h            = 960, 440
		top, bottom     = 70, 370
		callsX, callsW  = 80, 380
		latX, latW      = 560, 380
		minLog, maxLog  = 2.0, 6.0 // 100 to 1,000,000 calls
		barW, groupGap  = 22, 30
		font            = `font-family="sans-serif"`
		gray, blue, red = "#9e9e9e", "#1f77b4", "#d62728"
	)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s font-size="12">`+"\n", w, h, w, h, font)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">dispatch: Gemini API calls and lost-webhook detection, %d jobs per family (simulated)</text>`+"\n", 20, n)

	// Panel 1: calls, log scale.
	y := func(v float64) float64 {
		l := math.Log10(max(v, 1))
		return bottom - (l-minLog)/(maxLog-minLog)*(bottom-top)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">API calls (log scale), confirmations included</text>`+"\n", callsX, top-20)
	for e := minLog; e <= maxLog; e++ {
		yy := y(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e0e0e0"/>`+"\n", callsX, yy, callsX+callsW, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", callsX-6, yy+4, humanCount(math.Pow(10, e)))
	}
	groups := families(results)
	gx := callsX + 20
	for _, fam := range groups {
		r0, r5 := pick(results, fam, 0), pick(results, fam, 0.05)
		bars := []struct {
			v     float64
			color string
		}{{float64(r0.loop), gray}, {float64(r0.total()), blue}, {float64(r5.total()), red}}
		for i, bar := range bars {
			x := gx + i*(barW+4)
			yy := y(bar.v)
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"/>`+"\n", x, yy, barW, bottom-yy, bar.color)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", x+barW/2, yy-4, humanCount(bar.v))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", gx+(3*barW+8)/2, bottom+16, fam)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="11">%.0fx / %.0fx fewer</text>`+"\n", gx+(3*barW+8)/2, bottom+31, r0.ratio(), r5.ratio())
		gx += 3*(barW+4) + groupGap + 20
	}
	legend(&b, callsX, bottom+52, []string{gray, blue, red}, []string{"10 s polling loop", "dispatch, 0% lost", "dispatch, 5% lost"})

	// Panel 2: detection latency, linear.
	var maxLat time.Duration
	for _, r := range results {
		maxLat = max(maxLat, quantile(r.delivered, 0.99), quantile(r.undelivered, 0.99))
	}
	step := time.Minute
	ceil := (maxLat/step + 1) * step
	ly := func(d time.Duration) float64 { return bottom - float64(d)/float64(ceil)*(bottom-top) }
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">Detection latency: job end to Wait returning</text>`+"\n", latX, top-20)
	for d := time.Duration(0); d <= ceil; d += step {
		yy := ly(d)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e0e0e0"/>`+"\n", latX, yy, latX+latW, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%d min</text>`+"\n", latX-6, yy+4, int(d/time.Minute))
	}
	lx := latX + 14
	const lw = 18
	for _, fam := range groups {
		r0, r5 := pick(results, fam, 0), pick(results, fam, 0.05)
		bars := []struct {
			d       time.Duration
			color   string
			opacity string
		}{
			{quantile(r0.delivered, 0.5), blue, "0.55"}, {quantile(r0.delivered, 0.99), blue, "1"},
			{quantile(r5.undelivered, 0.5), red, "0.55"}, {quantile(r5.undelivered, 0.99), red, "1"},
		}
		for i, bar := range bars {
			x := lx + i*(lw+3)
			yy := ly(bar.d)
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s" fill-opacity="%s"/>`+"\n", x, yy, lw, bottom-yy, bar.color, bar.opacity)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="middle" font-size="9">%s</text>`+"\n", x+lw/2, yy-3, shortDuration(bar.d))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", lx+(4*lw+9)/2, bottom+16, fam)
		lx += 4*(lw+3) + groupGap + 20
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s" fill-opacity="0.55"/><text x="%d" y="%d">delivered p50</text>`+"\n", latX, bottom+43, blue, latX+16, bottom+53)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">delivered p99</text>`+"\n", latX+110, bottom+43, blue, latX+126, bottom+53)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s" fill-opacity="0.55"/><text x="%d" y="%d">lost p50</text>`+"\n", latX+220, bottom+43, red, latX+236, bottom+53)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">lost p99</text>`+"\n", latX+300, bottom+43, red, latX+316, bottom+53)
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

func legend(b *strings.Builder, x, y int, colors, labels []string) {
	for i := range colors {
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", x, y-9, colors[i], x+16, y+1, labels[i])
		x += 16 + 7*len(labels[i]) + 14
	}
}

// families lists the families of results in their order.
func families(results []simResult) []string {
	var fs []string
	for _, r := range results {
		if len(fs) == 0 || fs[len(fs)-1] != r.family {
			fs = append(fs, r.family)
		}
	}
	return fs
}

func pick(results []simResult, family string, lost float64) simResult {
	for _, r := range results {
		if r.family == family && r.lost == lost {
			return r
		}
	}
	return simResult{}
}

func humanCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func shortDuration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.0fs", d.Seconds())
	}
	return fmt.Sprintf("%.1fm", d.Minutes())
}
