package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sidestream/sidestream/sidecar/api"
)

func newGuestsCommand() *cobra.Command {
	var cf *clientFlags
	cmd := &cobra.Command{
		Use:   "guests",
		Short: "List a running sidecar's guests: source, state, labels and attached emitters",
		Long: "List the guests a running sidecar discovered (present or gone) with the emitters its attach rules gave them.\n" +
			"Follow their comings and goings with: sidestream tail guests",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client("guests")
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			guests, err := c.Guests(ctx)
			if err != nil {
				return cf.explain(err)
			}
			return printGuests(cmd.OutOrStdout(), guests)
		},
	}
	cf = addClientFlags(cmd)
	return cmd
}

func printGuests(w io.Writer, guests []api.Guest) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tNAME\tSTATE\tLABELS\tEMITTERS")
	for _, g := range guests {
		var labels, ems []string
		for _, k := range slices.Sorted(maps.Keys(g.Labels)) {
			labels = append(labels, k+"="+g.Labels[k])
		}
		for _, e := range g.Emitters {
			s := e.ID + " (" + e.Kind + ", " + e.State
			if e.Error != "" {
				s += ": " + e.Error
			}
			ems = append(ems, s+")")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.Source, g.Name, g.State, orDash(strings.Join(labels, ",")), orDash(strings.Join(ems, ", ")))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
