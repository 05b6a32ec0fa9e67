// Package build makes images from Dockerfiles, as docker's classic builder
// does: every instruction is a step that makes an image on the one before
// (metadata steps an empty layer, RUN a container whose writable layer is
// committed, COPY and ADD a layer written from the context), and a step
// whose instruction, parent and sources are unchanged is taken from the
// cache. The Dockerfile is parsed by buildkit's parser; the execution is
// Berth's own, on its engine, image store and snapshots.
//
// Contract: a failed or cancelled build tags nothing and leaves no
// container, mount or writable layer behind; the images of the steps that
// succeeded stay, untagged, as cache (docker keeps them too).
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/patternmatcher"

	"github.com/berth-project/berth/internal/dockerignore"
	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/engine"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
)

// Options are what `docker build` passes.
type Options struct {
	Dockerfile  string // path inside the context; "" is "Dockerfile"
	Tags        []string
	BuildArgs   map[string]*string
	Target      string
	NoCache     bool
	Pull        bool
	Labels      map[string]string
	NetworkMode string // for RUN; "" is the default bridge
}

// Builder runs builds on an engine and its image store.
type Builder struct {
	Images *image.Store
	Engine *engine.Engine
	// TmpDir holds the mounts of COPY steps.
	TmpDir string
}

// Error is a build failure that a step reports: docker prints its message
// and exits with Code.
type Error struct {
	Msg  string
	Code int
}

func (e *Error) Error() string { return e.Msg }

// The proxy variables every build may set without declaring them.
var predefinedArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// stageState is a stage being built.
type stageState struct {
	name   string
	id     digest.Digest // the image so far; "" for scratch with no step yet
	config dockerspec.DockerOCIImageConfig
	args   map[string]string // ARGs declared in the stage, with values
	argSet []string          // their names, in order
}

// run is one build.
type run struct {
	b      *Builder
	ctx    context.Context
	o      Options
	dir    string // the context, unpacked
	ignore *patternmatcher.PatternMatcher
	out    io.Writer
	step   int
	total  int
	stages map[string]*stageState // by name and by index
	global map[string]string      // ARGs before the first FROM
	used   map[string]bool        // build args some ARG took
	escape rune
}

// Build builds the Dockerfile in the context directory dir and returns the
// image made (tagged with o.Tags). Progress goes to out as docker's classic
// builder prints it.
func (b *Builder) Build(ctx context.Context, dir string, o Options, out io.Writer) (digest.Digest, error) {
	name := o.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	df, err := openInContext(dir, name)
	if err != nil {
		return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("Cannot locate specified Dockerfile: %s", name))
	}
	res, err := parser.Parse(df)
	df.Close()
	if err != nil {
		return "", errdefs.New(errdefs.ErrInvalid, "failed to parse Dockerfile: "+err.Error())
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "dockerfile parse error ")
		return "", errdefs.New(errdefs.ErrInvalid, "Dockerfile parse error "+msg)
	}
	if len(stages) == 0 {
		return "", errdefs.New(errdefs.ErrInvalid, "the Dockerfile has no FROM instruction")
	}
	last := len(stages) - 1
	if o.Target != "" {
		i, ok := instructions.HasStage(stages, o.Target)
		if !ok {
			return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("failed to reach build target %s in Dockerfile", o.Target))
		}
		last = i
	}
	ign, err := readIgnore(dir)
	if err != nil {
		return "", err
	}
	r := &run{b: b, ctx: ctx, o: o, dir: dir, ignore: ign, out: out, stages: map[string]*stageState{},
		global: map[string]string{}, used: map[string]bool{}, escape: res.EscapeToken}
	for _, a := range metaArgs {
		r.total++
		for _, kv := range a.Args {
			r.global[kv.Key] = r.argValue(kv.Key, kv.Value)
		}
	}
	for _, st := range stages[:last+1] {
		r.total += 1 + len(st.Commands)
	}
	for _, a := range metaArgs {
		r.step++
		fmt.Fprintf(out, "Step %d/%d : %s\n", r.step, r.total, a.String())
	}
	var final *stageState
	for i := range stages[:last+1] {
		if final, err = r.buildStage(i, &stages[i]); err != nil {
			return "", err
		}
	}
	var unused []string
	for k := range o.BuildArgs {
		if !r.used[k] && !predefinedArgs[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		fmt.Fprintf(out, "[Warning] One or more build-args %v were not consumed\n", unused)
	}
	id := final.id
	if id == "" || len(o.Labels) > 0 {
		// FROM scratch alone, or labels from the command line: one more
		// image, as docker makes.
		cfg := final.config
		cfg.Labels = mergeMap(cfg.Labels, o.Labels)
		img, err := b.Images.Commit(image.CommitOptions{Parent: id, Config: cfg})
		if err != nil {
			return "", err
		}
		id = img.ID
	}
	fmt.Fprintf(out, "Successfully built %s\n", id.Encoded()[:12])
	for _, t := range o.Tags {
		if err := b.Images.Tag(id.String(), t); err != nil {
			return "", err
		}
		fmt.Fprintf(out, "Successfully tagged %s\n", image.Familiar(fullTag(t)))
	}
	return id, nil
}

// fullTag adds ":latest" to a name without tag or digest.
func fullTag(t string) string {
	if i := strings.LastIndex(t, "/"); !strings.Contains(t[i+1:], ":") && !strings.Contains(t, "@") {
		return t + ":latest"
	}
	return t
}

// argValue is an ARG's value: the build arg given for it, else its default.
func (r *run) argValue(key string, def *string) string {
	if v, ok := r.o.BuildArgs[key]; ok && v != nil {
		r.used[key] = true
		return *v
	}
	if _, ok := r.o.BuildArgs[key]; ok {
		r.used[key] = true
	}
	if def == nil {
		return ""
	}
	return *def
}

// say prints a line of progress.
func (r *run) say(format string, a ...any) { fmt.Fprintf(r.out, format+"\n", a...) }

func (r *run) buildStage(index int, st *instructions.Stage) (*stageState, error) {
	r.step++
	s := &stageState{name: strings.ToLower(st.Name), args: map[string]string{}}
	r.say("Step %d/%d : %s", r.step, r.total, st.SourceCode)
	global := shell.EnvsFromSlice(globalEnv(r.global))
	if st.Platform != "" {
		p, _, _ := r.lex().ProcessWord(st.Platform, global)
		if p != "linux/"+runtime.GOARCH && p != "linux" {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("FROM --platform=%s: this daemon builds for linux/%s only", p, runtime.GOARCH))
		}
	}
	base, _, err := r.lex().ProcessWord(st.BaseName, global)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, "FROM: "+err.Error())
	}
	switch prev, ok := r.stages[strings.ToLower(base)]; {
	case ok:
		s.id, s.config = prev.id, prev.config
	case base == "scratch":
	default:
		img, err := r.b.Images.Get(base)
		if (err != nil && errdefs.NotFound(err)) || r.o.Pull {
			r.say("%s: Pulling from %s", base, base)
			img, err = r.b.Images.Pull(r.ctx, base, image.PullOptions{})
		}
		if err != nil {
			return nil, fmt.Errorf("FROM %s: %w", base, err)
		}
		s.id, s.config = img.ID, img.Config.Config
	}
	if s.id != "" {
		r.say(" ---> %s", s.id.Encoded()[:12])
	}
	triggers := s.config.OnBuild
	s.config.OnBuild = nil
	if len(triggers) > 0 {
		r.say("# Executing %d build trigger", len(triggers))
		for _, t := range triggers {
			cmd, err := parseOne(t)
			if err != nil {
				return nil, errdefs.New(errdefs.ErrInvalid, "ONBUILD "+t+": "+err.Error())
			}
			if err := r.exec(s, cmd, false); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range st.Commands {
		r.step++
		r.say("Step %d/%d : %s", r.step, r.total, sourceOf(c))
		if err := r.exec(s, c, true); err != nil {
			return nil, err
		}
	}
	if st.Name != "" {
		r.stages[s.name] = s
	}
	r.stages[strconv.Itoa(index)] = s
	return s, nil
}

// parseOne parses a single instruction (an ONBUILD trigger).
func parseOne(line string) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(line))
	if err != nil {
		return nil, err
	}
	if len(res.AST.Children) != 1 {
		return nil, fmt.Errorf("want one instruction")
	}
	return instructions.ParseCommand(res.AST.Children[0])
}

// sourceOf is the instruction as the Dockerfile has it, on one line.
func sourceOf(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return c.Name()
}

func (r *run) lex() *shell.Lex { return shell.NewLex(r.escape) }

// env is what instructions of stage s expand with: its ARGs, then its ENV.
func (s *stageState) env() []string {
	var env []string
	for _, k := range s.argSet {
		env = append(env, k+"="+s.args[k])
	}
	return append(env, s.config.Env...)
}

func globalEnv(m map[string]string) []string {
	var env []string
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	return env
}

// exec runs one instruction on stage s.
func (r *run) exec(s *stageState, c instructions.Command, expand bool) error {
	if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok && expand {
		env := shell.EnvsFromSlice(s.env())
		lex := r.lex()
		err := ex.Expand(func(w string) (string, error) {
			v, _, err := lex.ProcessWord(w, env)
			return v, err
		})
		if err != nil {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: %v", sourceOf(c), err))
		}
	}
	cfg := s.config
	if e, ok := c.(*instructions.ExposeCommand); ok && expand {
		var ports []string
		env := shell.EnvsFromSlice(s.env())
		for _, p := range e.Ports {
			words, err := r.lex().ProcessWords(p, env)
			if err != nil {
				return errdefs.New(errdefs.ErrInvalid, "EXPOSE: "+err.Error())
			}
			ports = append(ports, words...)
		}
		e.Ports = ports
	}
	if isMeta(c) {
		if err := ApplyConfig(&cfg, c); err != nil {
			return err
		}
		return r.commitMeta(s, c, cfg)
	}
	switch c := c.(type) {
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			def := kv.Value
			if def == nil {
				if g, ok := r.global[kv.Key]; ok {
					def = &g
				}
			}
			if _, ok := s.args[kv.Key]; !ok {
				s.argSet = append(s.argSet, kv.Key)
			}
			s.args[kv.Key] = r.argValue(kv.Key, def)
		}
		return r.commitMeta(s, c, cfg)
	case *instructions.RunCommand:
		return r.runStep(s, c)
	case *instructions.CopyCommand:
		if c.Parents || len(c.ExcludePatterns) > 0 || c.Link {
			return errdefs.New(errdefs.ErrInvalid, "COPY --parents, --exclude and --link need BuildKit; this builder is docker's classic one")
		}
		return r.copyStep(s, c, copySpec{SourcesAndDest: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod})
	case *instructions.AddCommand:
		if c.Link || len(c.ExcludePatterns) > 0 || c.Checksum != "" {
			return errdefs.New(errdefs.ErrInvalid, "ADD --link, --exclude and --checksum need BuildKit; this builder is docker's classic one")
		}
		return r.copyStep(s, c, copySpec{SourcesAndDest: c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod, add: true})
	}
	return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: instruction not supported", sourceOf(c)))
}

// withShell turns a shell-form command line into the stage's shell + it.
func (r *run) withShell(s *stageState, c instructions.ShellDependantCmdLine) []string {
	return withShell(&s.config, c)
}

func withShell(cfg *dockerspec.DockerOCIImageConfig, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string{}, c.CmdLine...)
	}
	sh := []string{"/bin/sh", "-c"}
	if len(cfg.Shell) > 0 {
		sh = append([]string{}, cfg.Shell...)
	}
	return append(sh, strings.Join(c.CmdLine, " "))
}

// isMeta reports whether c only changes the image's config.
func isMeta(c instructions.Command) bool {
	switch c.(type) {
	case *instructions.EnvCommand, *instructions.LabelCommand, *instructions.MaintainerCommand,
		*instructions.WorkdirCommand, *instructions.UserCommand, *instructions.ExposeCommand,
		*instructions.VolumeCommand, *instructions.StopSignalCommand, *instructions.CmdCommand,
		*instructions.EntrypointCommand, *instructions.ShellCommand, *instructions.HealthCheckCommand,
		*instructions.OnbuildCommand:
		return true
	}
	return false
}

// ApplyConfig applies an instruction that only changes the image's config
// (ENV, LABEL, CMD, …, as docker commit --change takes them) to cfg. Its
// words are already expanded.
func ApplyConfig(cfg *dockerspec.DockerOCIImageConfig, c instructions.Command) error {
	switch c := c.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		cfg.Labels = cloneMap(cfg.Labels)
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
	case *instructions.WorkdirCommand:
		cfg.WorkingDir = absIn(cfg.WorkingDir, c.Path)
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.ExposeCommand:
		cfg.ExposedPorts = cloneSet(cfg.ExposedPorts)
		for _, p := range c.Ports {
			for _, w := range strings.Fields(p) {
				port, err := exposedPort(w)
				if err != nil {
					return err
				}
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
	case *instructions.VolumeCommand:
		cfg.Volumes = cloneSet(cfg.Volumes)
		for _, v := range c.Volumes {
			if v == "" {
				return errdefs.New(errdefs.ErrInvalid, "VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		if _, err := engine.ParseSignal(c.Signal); err != nil {
			return err
		}
		cfg.StopSignal = c.Signal
	case *instructions.CmdCommand:
		cfg.Cmd = withShell(cfg, c.ShellDependantCmdLine)
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = withShell(cfg, c.ShellDependantCmdLine)
		if !c.PrependShell && len(cfg.Entrypoint) == 0 {
			cfg.Entrypoint = nil
		}
	case *instructions.ShellCommand:
		cfg.Shell = c.Shell
	case *instructions.HealthCheckCommand:
		cfg.Healthcheck = c.Health
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(append([]string(nil), cfg.OnBuild...), c.Expression)
	default:
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s does not change the image config", strings.ToUpper(c.Name())))
	}
	return nil
}

// cacheKey is what decides whether a step's image can be reused: the
// parent image, the instruction as expanded, and extra (source content,
// build args).
func cacheKey(parent digest.Digest, parts ...string) digest.Digest {
	h := sha256.New()
	io.WriteString(h, string(parent))
	for _, p := range parts {
		io.WriteString(h, "\x00"+p)
	}
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
}

// fromCache reuses the image a step with key made before, if any.
func (r *run) fromCache(s *stageState, key digest.Digest) bool {
	if r.o.NoCache {
		return false
	}
	id, ok := r.b.Images.CacheGet(key)
	if !ok {
		return false
	}
	img, err := r.b.Images.Get(id.String())
	if err != nil {
		return false
	}
	s.id, s.config = img.ID, img.Config.Config
	r.say(" ---> Using cache")
	r.say(" ---> %s", id.Encoded()[:12])
	return true
}

// historyText is how docker history shows a config step: CMD and
// ENTRYPOINT as the classic builder writes them (Go's quoting of the
// list, shell form expanded), others as written.
func historyText(c instructions.Command, cfg dockerspec.DockerOCIImageConfig, text string) string {
	quoted := func(l []string) string {
		q := make([]string, len(l))
		for i, s := range l {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, " ") + "]"
	}
	switch c.(type) {
	case *instructions.CmdCommand:
		return "CMD " + quoted(cfg.Cmd)
	case *instructions.EntrypointCommand:
		return "ENTRYPOINT " + quoted(cfg.Entrypoint)
	}
	return text
}

// commitMeta makes the image of a step that only changes the config.
func (r *run) commitMeta(s *stageState, c instructions.Command, cfg dockerspec.DockerOCIImageConfig) error {
	text := sourceOf(c)
	key := cacheKey(s.id, "meta", text, jsonString(cfg))
	if r.fromCache(s, key) {
		return nil
	}
	if err := r.ctx.Err(); err != nil {
		return err
	}
	img, err := r.b.Images.Commit(image.CommitOptions{Parent: s.id, Config: cfg,
		History: historyOf("/bin/sh -c #(nop)  " + historyText(c, cfg, text))})
	if err != nil {
		return err
	}
	return r.stepDone(s, key, img)
}

func (r *run) stepDone(s *stageState, key digest.Digest, img *image.Image) error {
	if err := r.b.Images.CachePut(key, img.ID); err != nil {
		return err
	}
	s.id = img.ID
	s.config = img.Config.Config
	r.say(" ---> %s", img.ID.Encoded()[:12])
	return nil
}

func absIn(cwd, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	if cwd == "" {
		cwd = "/"
	}
	return path.Join(cwd, p)
}

// openInContext opens a file of the context without following a symlink
// out of it.
func openInContext(dir, name string) (*os.File, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.Open(filepath.Clean(strings.TrimPrefix(name, "/")))
}

// readIgnore reads the context's .dockerignore, if any.
func readIgnore(dir string) (*patternmatcher.PatternMatcher, error) {
	f, err := openInContext(dir, ".dockerignore")
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	pm, err := dockerignore.Read(f)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, ".dockerignore: "+err.Error())
	}
	return pm, nil
}
