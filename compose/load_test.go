package compose

import (
	"context"
	"testing"
)

func TestLoadDump(t *testing.T) {
	st, err := Load(context.Background(), Options{Files: []string{"testdata/basic.yaml"}, ProjectName: "shop", Env: map[string]string{"SITE_CONF": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", st.Warnings)
	for _, s := range st.Services {
		t.Logf("%s %+v %+v deps=%v", s.Name, s.Spec, *s.Spec.TaskTemplate.ContainerSpec, s.DependsOn)
	}
	t.Logf("%+v", st.Networks)
	t.Logf("%+v %+v", st.Secrets, st.Configs)
}
