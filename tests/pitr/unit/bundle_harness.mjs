// The stand-in host for the TiDB PITR page's bundle (plugins/tidb_pitr/ui/tidb_pitr.js) under node: the bundle runs
// over the host's global React; here a small stand-in renders function components, hooks at their initial state,
// and class error boundaries, to the text a user would read. Used by bundle_render.test.mjs and render_payloads.mjs.
const BUNDLE = new URL("../../../plugins/tidb_pitr/ui/tidb_pitr.js", import.meta.url);

export class Component {
  constructor(props) {
    this.props = props;
  }
}

export const React = {
  Component,
  createElement: (type, props, ...children) => ({ type, props: { ...(props || {}), children } }),
  useState: (initial) => [typeof initial === "function" ? initial() : initial, () => {}],
  useEffect: () => {},
  useCallback: (fn) => fn,
};

// The bundle is an ES module over the host's globals, as Airflow's UI `import()`s it: the stand-ins go on node's
// globalThis first; its helpers module comes from beside it, as in the browser.
export async function load() {
  Object.assign(globalThis, { React, document: { baseURI: "http://airflow.test/" }, fetch: () => null });
  await import(BUNDLE.href);
  return globalThis["TiDB PITR"].parts;
}

// To text, as React would render it: a class is an error boundary (getDerivedStateFromError), a function a component.
export function render(node) {
  if (node === null || node === undefined || node === false || node === true) return "";
  if (Array.isArray(node)) return node.map(render).join("");
  if (typeof node !== "object") return String(node);
  const { type, props } = node;
  if (type === undefined) throw new Error("Objects are not valid as a React child"); // as React says it
  const children = props.children && props.children.length === 1 ? props.children[0] : props.children;
  if (typeof type === "function" && type.prototype instanceof Component) {
    const instance = new type({ ...props, children });
    try {
      return render(instance.render());
    } catch (error) {
      instance.state = type.getDerivedStateFromError(error);
      return render(instance.render());
    }
  }
  if (typeof type === "function") return render(type({ ...props, children }));
  const title = props.title ? `[title=${props.title}]` : "";
  return title + render(props.children);
}

