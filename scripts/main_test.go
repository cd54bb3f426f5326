package scripts_test

import (
	"os"
	"testing"

	"sockplay/internal/scripttest"
)

func TestMain(m *testing.M) { os.Exit(scripttest.Main(m)) }
