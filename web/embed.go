// Package web holds the files the sidecar serves as they are: the OpenAPI
// document of the HTTP API and the livedoc page (plain HTML/CSS/JS, no
// build step), embedded into the binary.
package web

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of every route, served at
// /openapi.yaml. A test in sidecar/internal/httpapi keeps it equal to the
// router.
//
//go:embed openapi.yaml
var OpenAPI []byte

// LivedocPlaceholder is served at /livedoc until the livedoc page lands.
//
//go:embed livedoc_placeholder.html
var LivedocPlaceholder []byte
