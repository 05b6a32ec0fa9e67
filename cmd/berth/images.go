package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-project/berth/image"
)

func pullCmd() *cobra.Command {
	var platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var po image.PullOptions
			if platform != "" {
				p, err := v1.ParsePlatform(platform)
				if err != nil {
					return fmt.Errorf("--platform %q: %w", platform, err)
				}
				po.Platform = p
			}
			if !quiet {
				po.Progress = newProgressPrinter(os.Stdout, term.IsTerminal(int(os.Stdout.Fd()))).Show
			}
			img, err := store.Pull(cmd.Context(), args[0], po)
			if err != nil {
				return err
			}
			if quiet {
				fmt.Println(args[0])
				return nil
			}
			fmt.Printf("Status: Downloaded newer image for %s (%s)\n", args[0], img.ID.Encoded()[:12])
			return nil
		},
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
		RunE: func(cmd *cobra.Command, args []string) error {
			imgs, err := store.List()
			if err != nil {
				return err
			}
			if quiet {
				for _, img := range imgs {
					fmt.Println(img.ID.Encoded()[:12])
				}
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			for _, img := range imgs {
				created := "N/A"
				if img.Config.Created != nil {
					created = ago(*img.Config.Created)
				}
				names := img.RepoTags
				if len(names) == 0 {
					names = []string{"<none>:<none>"}
				}
				for _, n := range names {
					f := image.Familiar(n)
					i := strings.LastIndex(f, ":")
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f[:i], f[i+1:], img.ID.Encoded()[:12], created, image.HumanSize(img.Size))
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only image IDs")
	return cmd
}

func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "Less than a minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func tagCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Give an image another name",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return store.Tag(args[0], args[1])
		},
	}
}

func rmiCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, ref := range args {
				res, err := store.Remove(ref, force)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for _, u := range res.Untagged {
					fmt.Println("Untagged:", image.Familiar(u))
				}
				for _, d := range res.Deleted {
					fmt.Println("Deleted:", d)
				}
			}
			return errors.Join(errs...)
		},
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
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := store.Prune(all)
			if err != nil {
				return err
			}
			for _, d := range res.Deleted {
				fmt.Println("deleted:", d)
			}
			fmt.Printf("Total reclaimed space: %s\n", image.HumanSize(res.Reclaimed))
			return nil
		},
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "remove every image no container uses, not only untagged ones")
	inspect := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Show an image's metadata and config",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			img, err := store.Get(args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "    ")
			return enc.Encode(img)
		},
	}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check every blob, layer and name in the store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			errs := store.Verify()
			for _, e := range errs {
				fmt.Fprintln(os.Stderr, e)
			}
			if len(errs) > 0 {
				return fmt.Errorf("%d problem(s) in %s", len(errs), global.dataRoot)
			}
			fmt.Println("consistent")
			return nil
		},
	}
	cmd.AddCommand(prune, inspect, verify)
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
			return store.Save(w, args)
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
			names, err := store.Load(r, nil)
			if err != nil {
				return err
			}
			for _, n := range names {
				fmt.Println("Loaded image:", image.Familiar(n))
			}
			return nil
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
			img, err := store.Import(r, ref)
			if err != nil {
				return err
			}
			fmt.Println(img.ID)
			return nil
		},
	}
}

func inputFile(name string) (io.ReadCloser, error) {
	if name == "" {
		return io.NopCloser(os.Stdin), nil
	}
	return os.Open(name)
}
