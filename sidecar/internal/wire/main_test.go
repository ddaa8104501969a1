package wire_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/protocol.UpdateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/app/server.(*Hertz).Spin.(*Hertz).initOnRunHooks.func2.1"),
		goleak.IgnoreAnyFunction("github.com/cloudwego/hertz/pkg/common/timer.(*timer).run"),
	)
}
