package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/berth-project/berth/engine"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/logfile"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// heredocCmdLine folds RUN's heredocs (which the parser gives, as
// BuildKit's Dockerfile frontend does) into the command, as BuildKit runs
// them: a RUN that is one heredoc runs its text with the shell; a command
// that reads heredocs gets them back in its shell text. A heredoc script
// with its own interpreter (#!) is refused: the classic builder has no
// file to hand it.
func heredocCmdLine(c instructions.ShellDependantCmdLine) (instructions.ShellDependantCmdLine, error) {
	if len(c.Files) == 0 {
		return c, nil
	}
	if len(c.CmdLine) != 1 || !c.PrependShell {
		return c, errdefs.New(errdefs.ErrInvalid, "RUN with a heredoc takes the shell form")
	}
	if parser.MustParseHeredoc(c.CmdLine[0]) != nil {
		data := c.Files[0].Data
		if c.Files[0].Chomp {
			data = parser.ChompHeredocContent(data)
		}
		if strings.HasPrefix(data, "#!") {
			return c, errdefs.New(errdefs.ErrInvalid, "RUN with a heredoc script of its own interpreter (#!) needs BuildKit; write the script into the context and COPY it")
		}
		return instructions.ShellDependantCmdLine{CmdLine: []string{data}, PrependShell: true}, nil
	}
	full := c.CmdLine[0]
	for _, f := range c.Files {
		full += "\n" + f.Data + f.Name
	}
	return instructions.ShellDependantCmdLine{CmdLine: []string{full}, PrependShell: true}, nil
}

// runStep runs a RUN instruction in a container on the stage's image and
// commits what it wrote.
func (r *run) runStep(s *stageState, c *instructions.RunCommand) error {
	cmdLine, err := heredocCmdLine(c.ShellDependantCmdLine)
	if err != nil {
		return err
	}
	if len(c.FlagsUsed) > 0 {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("RUN --%s needs BuildKit; this builder is docker's classic one", c.FlagsUsed[0]))
	}
	if s.id == "" {
		return errdefs.New(errdefs.ErrInvalid, "RUN on an empty image (FROM scratch): there is nothing to run")
	}
	args := r.withShell(s, cmdLine)
	// Build args reach RUN's environment (not the image's); they are part
	// of the cache key as docker's are.
	var argEnv []string
	for _, k := range s.argSet {
		if !hasEnv(s.config.Env, k) {
			argEnv = append(argEnv, k+"="+s.args[k])
		}
	}
	for k, v := range r.o.BuildArgs {
		if predefinedArgs[k] && v != nil && !hasEnv(s.config.Env, k) {
			argEnv = append(argEnv, k+"="+*v)
		}
	}
	sort.Strings(argEnv)
	createdBy := strings.Join(args, " ")
	if len(argEnv) > 0 {
		createdBy = fmt.Sprintf("|%d %s %s", len(argEnv), strings.Join(argEnv, " "), createdBy)
	}
	key := cacheKey(s.id, "run", jsonString(args), strings.Join(argEnv, "\x00"), jsonString(s.config))
	if r.fromCache(s, key) {
		return nil
	}
	env := append(append([]string{}, s.config.Env...), argEnv...)
	cfg := &container.Config{Image: s.id.String(), Cmd: args, Entrypoint: []string{""}, Env: env,
		User: s.config.User, WorkingDir: s.config.WorkingDir,
		Labels: map[string]string{"io.berth.build": "step"}}
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(r.o.NetworkMode)}
	created, err := r.b.Engine.Create("", cfg, hc, nil)
	if err != nil {
		return fmt.Errorf("RUN: %w", err)
	}
	id := created.ID
	r.say(" ---> Running in %s", id[:12])
	// Always removed: killed first if the build was cancelled.
	defer r.b.Engine.Remove(id, engine.RemoveOptions{Force: true})
	if err := r.b.Engine.Start(id); err != nil {
		return fmt.Errorf("RUN: %w", err)
	}
	stop := context.AfterFunc(r.ctx, func() { r.b.Engine.Kill(id, "KILL") })
	defer stop()
	_, err = r.b.Engine.Logs(r.ctx, id, engine.LogsOptions{Tail: -1, Follow: true}, func(e logfile.Entry) error {
		_, werr := io.WriteString(r.out, e.Log)
		return werr
	})
	if err != nil && r.ctx.Err() == nil {
		return fmt.Errorf("RUN: output: %w", err)
	}
	code, err := r.b.Engine.Wait(context.Background(), id, "not-running")
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("RUN: %w", err)
	}
	if code != 0 {
		return &Error{Code: code, Msg: fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(args, " "), code)}
	}
	img, err := r.b.Images.Commit(image.CommitOptions{Parent: s.id, Config: s.config,
		Layer: r.b.Images.RootfsLayer(id), History: historyOf(createdBy)})
	if err != nil {
		return fmt.Errorf("RUN: commit: %w", err)
	}
	r.say("Removing intermediate container %s", id[:12])
	return r.stepDone(s, key, img)
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return true
		}
	}
	return false
}

func setEnv(env []string, k, v string) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if !strings.HasPrefix(e, k+"=") {
			out = append(out, e)
		}
	}
	return append(out, k+"="+v)
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func mergeMap(a, b map[string]string) map[string]string {
	if len(b) == 0 {
		return a
	}
	out := cloneMap(a)
	for k, v := range b {
		out[k] = v
	}
	return out
}

func cloneSet(m map[string]struct{}) map[string]struct{} {
	out := make(map[string]struct{}, len(m))
	for k := range m {
		out[k] = struct{}{}
	}
	return out
}

// exposedPort checks an EXPOSE word ("80", "80/udp", "8000-8002/tcp").
func exposedPort(w string) (string, error) {
	port, proto, _ := strings.Cut(w, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid proto: %s", proto))
	}
	lo, hi, isRange := strings.Cut(port, "-")
	for _, p := range []string{lo, hi} {
		if !isRange && p == hi {
			continue
		}
		n := 0
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != p {
			return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid containerPort: %s", port))
		}
	}
	return port + "/" + proto, nil
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func historyOf(createdBy string) ocispec.History {
	now := time.Now().UTC()
	return ocispec.History{Created: &now, CreatedBy: createdBy}
}
