// Package web holds the files the sidecar serves as they are: the OpenAPI
// document of the HTTP API and the livedoc page (plain HTML/CSS/JS, no
// build step), embedded into the binary so the page works offline.
package web

import "embed"

// OpenAPI is the OpenAPI 3.1 document of every route, served at
// /openapi.yaml. A test in sidecar/internal/httpapi keeps it equal to the
// router.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Livedoc is the livedoc page: livedoc/index.html is served at /livedoc,
// every other file of the folder at /livedoc/NAME. The folder is flat
// (the route takes one path segment).
//
//go:embed livedoc
var Livedoc embed.FS
