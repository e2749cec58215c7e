// What Airflow's UI gives the page's bundle as globals (the host's own React, shared with every react_apps plugin):
// for tsc's check of tidb_pitr.js only; nothing here is served.
import type * as ReactModule from "react";

declare global {
  var React: typeof ReactModule;
  // So that a class over the host's React names its base type (`@extends {React.Component<Props, State>}`).
  namespace React {
    type Component<P = object, S = object> = ReactModule.Component<P, S>;
  }
}

export {};
