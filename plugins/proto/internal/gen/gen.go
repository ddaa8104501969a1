// Command gen regenerates the Go code of the plugin contract
// (plugins/proto/*.pb.go) without protoc: emitter.proto is compiled in
// process by protocompile (a pure-Go compiler), protoc-gen-go runs as a
// library and protoc-gen-go-grpc, a main package, runs through the go.mod
// tool directive. Both generator versions are pinned by go.mod, so the
// output depends on nothing but the module graph. `go generate
// ./plugins/proto/...` runs it; its test fails when the committed code is
// stale.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"

	"github.com/bufbuild/protocompile"
	gengo "google.golang.org/protobuf/cmd/protoc-gen-go/internal_gengo"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/pluginpb"
)

// params is what the former protoc command line passed to both generators:
// outputs next to the .proto file.
const params = "paths=source_relative"

// protoFiles are the contract's sources, relative to the proto directory.
var protoFiles = []string{"emitter.proto"}

// generate compiles protoFiles under dir and returns the generated files by
// name (relative to dir).
func generate(ctx context.Context, dir string) (map[string][]byte, error) {
	req, err := request(ctx, dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte)
	for _, run := range []func(context.Context, *pluginpb.CodeGeneratorRequest) (*pluginpb.CodeGeneratorResponse, error){runGo, runGRPC} {
		resp, err := run(ctx, req)
		if err != nil {
			return nil, err
		}
		if resp.Error != nil {
			return nil, fmt.Errorf("generator: %s", resp.GetError())
		}
		for _, f := range resp.File {
			if f.GetInsertionPoint() != "" {
				return nil, fmt.Errorf("generator: insertion point %q in %s is not supported", f.GetInsertionPoint(), f.GetName())
			}
			out[f.GetName()] = []byte(f.GetContent())
		}
	}
	return out, nil
}

// request builds what protoc would hand its plugins. CompilerVersion stays
// unset because no protoc runs: the headers honestly say "protoc (unknown)".
func request(ctx context.Context, dir string) (*pluginpb.CodeGeneratorRequest, error) {
	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{dir}}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	files, err := c.Compile(ctx, protoFiles...)
	if err != nil {
		return nil, fmt.Errorf("compile %v: %w", protoFiles, err)
	}
	req := &pluginpb.CodeGeneratorRequest{FileToGenerate: protoFiles, Parameter: proto.String(params)}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imps := fd.Imports()
		for i := range imps.Len() {
			add(imps.Get(i).FileDescriptor)
		}
		req.ProtoFile = append(req.ProtoFile, protodesc.ToFileDescriptorProto(fd))
	}
	for _, f := range files {
		add(f)
	}
	return req, nil
}

// runGo runs protoc-gen-go in process, as its main does.
func runGo(_ context.Context, req *pluginpb.CodeGeneratorRequest) (*pluginpb.CodeGeneratorResponse, error) {
	gen, err := protogen.Options{}.New(req)
	if err != nil {
		return nil, fmt.Errorf("protoc-gen-go: %w", err)
	}
	for _, f := range gen.Files {
		if f.Generate {
			gengo.GenerateFile(gen, f)
		}
	}
	gen.SupportedFeatures = gengo.SupportedFeatures
	gen.SupportedEditionsMinimum = gengo.SupportedEditionsMinimum
	gen.SupportedEditionsMaximum = gengo.SupportedEditionsMaximum
	return gen.Response(), nil
}

// runGRPC runs protoc-gen-go-grpc through `go tool`: it is a main package,
// so it cannot be linked, and the tool directive pins its version. It runs
// in the working directory, which must be inside this module.
func runGRPC(ctx context.Context, req *pluginpb.CodeGeneratorRequest) (*pluginpb.CodeGeneratorResponse, error) {
	in, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "tool", "protoc-gen-go-grpc")
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go tool protoc-gen-go-grpc: %w\n%s", err, stderr.Bytes())
	}
	resp := &pluginpb.CodeGeneratorResponse{}
	if err := proto.Unmarshal(stdout.Bytes(), resp); err != nil {
		return nil, fmt.Errorf("protoc-gen-go-grpc response: %w", err)
	}
	return resp, nil
}
