package kube

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// WatchFor waits, event-driven, until cond holds for the named object: it lists it, then watches it
// (re-listing if the watch breaks) and evaluates cond on every change, until timeout. cond gets nil
// while the object does not exist. The last "not yet" reason is in the timeout error.
func (c *Client) WatchFor(ctx context.Context, gvr schema.GroupVersionResource, ns, name string, timeout time.Duration,
	cond func(o *unstructured.Unstructured) (bool, string)) error {
	return c.watchList(ctx, gvr, ns, fields.OneTermEqualSelector("metadata.name", name).String(), "", timeout,
		fmt.Sprintf("%s %s/%s", gvr.Resource, ns, name), func(items []*unstructured.Unstructured) (bool, string) {
			if len(items) == 0 {
				return cond(nil)
			}
			return cond(items[0])
		})
}

// WatchList waits, event-driven, until cond holds for the objects matching labelSelector in ns.
func (c *Client) WatchList(ctx context.Context, gvr schema.GroupVersionResource, ns, labelSelector string, timeout time.Duration, what string,
	cond func(items []*unstructured.Unstructured) (bool, string)) error {
	return c.watchList(ctx, gvr, ns, "", labelSelector, timeout, what, cond)
}

func (c *Client) watchList(ctx context.Context, gvr schema.GroupVersionResource, ns, fieldSel, labelSel string, timeout time.Duration, what string,
	cond func(items []*unstructured.Unstructured) (bool, string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ri := c.Dynamic.Resource(gvr).Namespace(ns)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector, o.LabelSelector = fieldSel, labelSel
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector, o.LabelSelector = fieldSel, labelSel
			return ri.Watch(ctx, o)
		},
	}
	store := map[string]*unstructured.Unstructured{}
	last := ""
	check := func() (bool, error) {
		items := make([]*unstructured.Unstructured, 0, len(store))
		for _, o := range store {
			items = append(items, o)
		}
		ok, why := cond(items)
		if why != "" {
			last = why
		}
		return ok, nil
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, func(st cache.Store) (bool, error) {
		for _, o := range st.List() {
			u := o.(*unstructured.Unstructured)
			store[u.GetName()] = u
		}
		return check()
	}, func(ev watch.Event) (bool, error) {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return false, nil
		}
		if ev.Type == watch.Deleted {
			delete(store, u.GetName())
		} else {
			store[u.GetName()] = u
		}
		return check()
	})
	if err != nil {
		return fmt.Errorf("%s: not done after %s (last state: %s): %w", what, timeout, last, err)
	}
	return nil
}
