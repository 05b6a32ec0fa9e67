package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"
	"github.com/moby/patternmatcher"
	"github.com/spf13/cobra"

	"github.com/berth-project/berth/internal/dockerignore"
)

func buildCmd() *cobra.Command {
	var (
		tags, buildArgs, labels []string
		file, target, network   string
		noCache, pull, quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH|-",
		Short: "Build an image from a Dockerfile (berthd's classic builder)",
		Args:  cobra.ExactArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ctx, dockerfile, err := buildContext(args[0], file)
			if err != nil {
				return err
			}
			defer ctx.Close()
			opts := client.ImageBuildOptions{Tags: tags, Dockerfile: dockerfile, Target: target, NoCache: noCache,
				PullParent: pull, SuppressOutput: quiet, NetworkMode: network, Remove: true,
				BuildArgs: map[string]*string{}, Labels: map[string]string{}}
			for _, a := range buildArgs {
				k, v, ok := strings.Cut(a, "=")
				if !ok { // as docker: the value from the environment
					env, set := os.LookupEnv(k)
					if !set {
						opts.BuildArgs[k] = nil
						continue
					}
					v = env
				}
				opts.BuildArgs[k] = &v
			}
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				opts.Labels[k] = v
			}
			res, err := c.ImageBuild(cmd.Context(), ctx, opts)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			return printBuild(res.Body, quiet)
		}),
	}
	f := cmd.Flags()
	f.StringArrayVarP(&tags, "tag", "t", nil, "name and optionally a tag (name:tag)")
	f.StringVarP(&file, "file", "f", "", "the Dockerfile (default PATH/Dockerfile)")
	f.StringArrayVar(&buildArgs, "build-arg", nil, "build-time variable KEY=VALUE")
	f.StringArrayVar(&labels, "label", nil, "label KEY=VALUE for the image")
	f.StringVar(&target, "target", "", "the build stage to stop at")
	f.StringVar(&network, "network", "", "network of the RUN steps (default, none, host)")
	f.BoolVar(&noCache, "no-cache", false, "do not use the layer cache")
	f.BoolVar(&pull, "pull", false, "pull a newer version of the base images")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the image ID")
	return cmd
}

// buildContext is the tar of the context directory dir — what
// .dockerignore leaves, the Dockerfile and .dockerignore always — or
// standard input as it is when dir is "-". A Dockerfile outside the
// context is sent inside it under a name of its own, as docker does.
func buildContext(dir, dockerfile string) (io.ReadCloser, string, error) {
	if dir == "-" {
		return io.NopCloser(os.Stdin), dockerfile, nil
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, "", fmt.Errorf("unable to prepare context: %w", err)
	}
	if !info.IsDir() {
		return nil, "", fmt.Errorf("unable to prepare context: %s is not a directory", dir)
	}
	var pm *patternmatcher.PatternMatcher
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		pm, err = dockerignore.Read(f)
		f.Close()
		if err != nil {
			return nil, "", fmt.Errorf(".dockerignore: %w", err)
		}
	}
	name := "Dockerfile"
	var outside string
	if dockerfile != "" {
		abs, _ := filepath.Abs(dockerfile)
		root, _ := filepath.Abs(dir)
		if rel, err := filepath.Rel(root, abs); err == nil && !strings.HasPrefix(rel, "..") {
			name = filepath.ToSlash(rel)
		} else {
			outside, name = abs, ".berth-dockerfile"
		}
	}
	if _, err := os.Stat(filepath.Join(dir, name)); outside == "" && err != nil {
		return nil, "", fmt.Errorf("unable to prepare context: the Dockerfile (%s) cannot be read: %w", filepath.Join(dir, name), err)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeContext(pw, dir, name, outside, pm))
	}()
	return pr, name, nil
}

func writeContext(w io.Writer, dir, dockerfile, outside string, pm *patternmatcher.PatternMatcher) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if pm != nil && rel != dockerfile && rel != ".dockerignore" {
			if skip, _ := pm.MatchesOrParentMatches(rel); skip {
				if d.IsDir() && !pm.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		return addFile(tw, p, rel)
	})
	if err == nil && outside != "" {
		err = addFile(tw, outside, dockerfile)
	}
	if err != nil {
		return err
	}
	return tw.Close()
}

// addFile writes the file at p to tw as name; symlinks as links.
func addFile(tw *tar.Writer, p, name string) error {
	info, err := os.Lstat(p)
	if err != nil {
		return err
	}
	link := ""
	if info.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return nil // sockets and the like are not part of a context
	}
	hdr.Name = name
	if info.IsDir() {
		hdr.Name += "/"
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(tw, f, hdr.Size)
	return err
}

// printBuild prints the build's stream and fails with its error — with
// the failing RUN's exit code as the exit status, as docker.
func printBuild(r io.Reader, quiet bool) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Stream, Status string
			Aux            *struct{ ID string }
			Error          string `json:"error"`
			ErrorDetail    *struct {
				Code    int
				Message string
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != "" {
			if m.ErrorDetail != nil && m.ErrorDetail.Code > 0 {
				fmt.Fprintln(os.Stderr, m.Error)
				return statusError{code: m.ErrorDetail.Code}
			}
			return errors.New(m.Error)
		}
		if quiet {
			if m.Aux != nil && m.Aux.ID != "" {
				fmt.Println(m.Aux.ID)
			}
			continue
		}
		if m.Stream != "" {
			fmt.Print(m.Stream)
		}
		if m.Status != "" {
			fmt.Println(m.Status)
		}
	}
}
