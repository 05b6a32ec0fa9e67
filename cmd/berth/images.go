package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-project/berth/internal/units"
)

// pull asks the daemon to pull ref and shows its progress stream on w.
func pull(ctx context.Context, c *client.Client, ref string, w io.Writer) error {
	return pullPlatform(ctx, c, ref, "", w)
}

func pullPlatform(ctx context.Context, c *client.Client, ref, platform string, w io.Writer) error {
	o := client.ImagePullOptions{}
	if platform != "" {
		os, arch, _ := strings.Cut(platform, "/")
		arch, variant, _ := strings.Cut(arch, "/")
		o.Platforms = []ocispec.Platform{{OS: os, Architecture: arch, Variant: variant}}
	}
	resp, err := c.ImagePull(ctx, ref, o)
	if err != nil {
		return err
	}
	defer resp.Close()
	var printer *progressPrinter
	if w != nil {
		tty := false
		if f, ok := w.(*os.File); ok {
			tty = term.IsTerminal(int(f.Fd()))
		}
		printer = newProgressPrinter(w, tty)
	}
	for m, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return err
		}
		if m.Error != nil {
			return errors.New(m.Error.Message)
		}
		if printer != nil {
			ev := pullEvent{ID: m.ID, Status: m.Status}
			if m.Progress != nil {
				ev.Current, ev.Total = m.Progress.Current, m.Progress.Total
			}
			printer.Show(ev)
		}
	}
	return nil
}

func pullCmd() *cobra.Command {
	var platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			var w io.Writer = os.Stdout
			if quiet {
				w = nil
			}
			if err := pullPlatform(cmd.Context(), c, args[0], platform, w); err != nil {
				return err
			}
			if quiet {
				fmt.Println(args[0])
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] to pick from a multi-platform image")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}

func imagesCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List images",
		Args:  cobra.NoArgs,
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			res, err := c.ImageList(cmd.Context(), client.ImageListOptions{})
			if err != nil {
				return err
			}
			short := func(id string) string { return strings.TrimPrefix(id, "sha256:")[:12] }
			if quiet {
				for _, img := range res.Items {
					fmt.Println(short(img.ID))
				}
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			for _, img := range res.Items {
				names := img.RepoTags
				if len(names) == 0 {
					names = []string{"<none>:<none>"}
				}
				for _, n := range names {
					i := strings.LastIndex(n, ":")
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n[:i], n[i+1:], short(img.ID), ago(time.Unix(img.Created, 0)), units.HumanSize(img.Size))
				}
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only image IDs")
	return cmd
}

func tagCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Give an image another name",
		Args:  cobra.ExactArgs(2),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			_, err := c.ImageTag(cmd.Context(), client.ImageTagOptions{Source: args[0], Target: args[1]})
			return err
		}),
	}
}

func rmiCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove images",
		Args:  cobra.MinimumNArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			var errs []error
			for _, ref := range args {
				res, err := c.ImageRemove(cmd.Context(), ref, client.ImageRemoveOptions{Force: force})
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for _, d := range res.Items {
					if d.Untagged != "" {
						fmt.Println("Untagged:", d.Untagged)
					}
					if d.Deleted != "" {
						fmt.Println("Deleted:", d.Deleted)
					}
				}
			}
			return errors.Join(errs...)
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove even if named several times or in use (in use: untag only)")
	return cmd
}

func imageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images"}
	var all bool
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove unused images, blobs and layers",
		Args:  cobra.NoArgs,
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			f := client.Filters{}
			if all {
				f.Add("dangling", "false")
			}
			res, err := c.ImagePrune(cmd.Context(), client.ImagePruneOptions{Filters: f})
			if err != nil {
				return err
			}
			for _, d := range res.Report.ImagesDeleted {
				if d.Deleted != "" {
					fmt.Println("deleted:", d.Deleted)
				}
			}
			fmt.Printf("Total reclaimed space: %s\n", units.HumanSize(int64(res.Report.SpaceReclaimed)))
			return nil
		}),
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "remove every image no container uses, not only untagged ones")
	inspect := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Show an image's metadata and config",
		Args:  cobra.ExactArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			img, err := c.ImageInspect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "    ")
			return enc.Encode(img.InspectResponse)
		}),
	}
	cmd.AddCommand(prune, inspect)
	return cmd
}

func saveCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Write images to a tar (docker-archive and OCI layout in one)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var w io.Writer = os.Stdout
			if output != "" {
				f, err := os.Create(output)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			} else if term.IsTerminal(int(os.Stdout.Fd())) {
				return errors.New("refusing to write an archive to a terminal: use -o FILE or redirect")
			}
			c, err := apiClient()
			if err != nil {
				return err
			}
			rc, err := c.ImageSave(cmd.Context(), args)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(w, rc)
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to FILE instead of standard output")
	return cmd
}

func loadCmd() *cobra.Command {
	var input string
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Add the images of a docker-archive or OCI-layout tar",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := inputFile(input)
			if err != nil {
				return err
			}
			defer r.Close()
			c, err := apiClient()
			if err != nil {
				return err
			}
			rc, err := c.ImageLoad(cmd.Context(), r)
			if err != nil {
				return err
			}
			defer rc.Close()
			return printStream(rc)
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from FILE instead of standard input")
	return cmd
}

func importCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE|- [REPOSITORY[:TAG]]",
		Short: "Make a one-layer image from a root filesystem tarball",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := args[0]
			if src == "-" {
				src = ""
			}
			r, err := inputFile(src)
			if err != nil {
				return err
			}
			defer r.Close()
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			c, err := apiClient()
			if err != nil {
				return err
			}
			rc, err := c.ImageImport(cmd.Context(), client.ImageImportSource{Source: r, SourceName: "-"}, ref, client.ImageImportOptions{})
			if err != nil {
				return err
			}
			defer rc.Close()
			return printStream(rc)
		},
	}
}

// printStream prints a daemon's JSON message stream (load, import): its
// "stream" and "status" lines, and fails on its error.
func printStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Stream, Status string
			Error          string `json:"error"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		if m.Stream != "" {
			fmt.Print(m.Stream)
		}
		if m.Status != "" {
			fmt.Println(m.Status)
		}
	}
}

func inputFile(name string) (io.ReadCloser, error) {
	if name == "" {
		return io.NopCloser(os.Stdin), nil
	}
	return os.Open(name)
}
