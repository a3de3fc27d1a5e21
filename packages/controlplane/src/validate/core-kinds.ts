// Light checks of the core Kubernetes kinds: only the fields translation reads (a Pod's node, IPs
// and container ports, a Service's VIPs and ports, a Node's addresses). The API server validates
// the rest in cluster mode; in local mode these are the mistakes that would silently break a mesh.

import { isIp } from "@ambient/core";
import {
  at,
  eachItem,
  ianaServiceName,
  isPortNumber,
  isRecord,
  type Json,
  type Problems,
  quote,
  record,
} from "@ambient/kube";

export function checkPod(obj: Json, problems: Problems): void {
  const spec = obj.spec;
  if (spec !== undefined && !isRecord(spec)) problems.add("spec", "must be a mapping");
  const s = record(spec);
  optionalString(s, "spec", "nodeName", problems);
  optionalString(s, "spec", "serviceAccountName", problems);
  if (s.hostNetwork !== undefined && typeof s.hostNetwork !== "boolean") {
    problems.add("spec.hostNetwork", "must be true or false");
  }
  eachItem(s.containers, "spec.containers", problems, (container, path) => {
    eachItem(container.ports, at(path, "ports"), problems, (port, portPath) => {
      if (!isPortNumber(port.containerPort)) {
        problems.add(at(portPath, "containerPort"), "must be an integer from 1 to 65535");
      }
      if (port.name !== undefined) {
        const problem = typeof port.name === "string" ? ianaServiceName(port.name) : "must be a string";
        if (problem) problems.add(at(portPath, "name"), problem);
      }
    });
  });

  const status = obj.status;
  if (status !== undefined && !isRecord(status)) problems.add("status", "must be a mapping");
  const st = record(status);
  optionalString(st, "status", "phase", problems);
  if (st.podIP !== undefined && st.podIP !== "" && !isIp(st.podIP)) {
    problems.add("status.podIP", `${quote(st.podIP)} is not an IPv4 or IPv6 address`);
  }
  eachItem(st.podIPs, "status.podIPs", problems, (entry, path) => {
    if (!isIp(entry.ip)) problems.add(at(path, "ip"), `${quote(entry.ip)} is not an IPv4 or IPv6 address`);
  });
  eachItem(st.conditions, "status.conditions", problems, (cond, path) => {
    if (typeof cond.type !== "string") problems.add(at(path, "type"), "must be a string");
    if (typeof cond.status !== "string") {
      problems.add(at(path, "status"), 'must be a string ("True", "False" or "Unknown"); quote it in YAML');
    }
  });
}

export function checkService(obj: Json, problems: Problems): void {
  const spec = obj.spec;
  if (spec !== undefined && !isRecord(spec)) problems.add("spec", "must be a mapping");
  const s = record(spec);

  if (s.clusterIP !== undefined) checkClusterIp(s.clusterIP, "spec.clusterIP", problems);
  if (s.clusterIPs !== undefined) {
    if (!Array.isArray(s.clusterIPs)) problems.add("spec.clusterIPs", "must be a list");
    else {
      s.clusterIPs.forEach((ip, i) => {
        checkClusterIp(ip, at("spec.clusterIPs", i), problems);
      });
    }
  }

  if (s.selector !== undefined && s.selector !== null) {
    if (!isRecord(s.selector)) problems.add("spec.selector", "must be a mapping of label names to values");
    else {
      for (const [k, v] of Object.entries(s.selector)) {
        if (typeof v !== "string") problems.add(at("spec.selector", k), "must be a string; quote it in YAML");
      }
    }
  }

  const ports = Array.isArray(s.ports) ? s.ports : [];
  const names = new Map<string, number>();
  eachItem(s.ports, "spec.ports", problems, (port, path, i) => {
    if (!isPortNumber(port.port)) problems.add(at(path, "port"), "must be an integer from 1 to 65535");
    const target = port.targetPort;
    if (typeof target === "string") {
      const problem = ianaServiceName(target);
      if (problem) problems.add(at(path, "targetPort"), `named target port ${quote(target)} ${problem}`);
    } else if (target !== undefined && !isPortNumber(target)) {
      problems.add(at(path, "targetPort"), "must be a port number from 1 to 65535 or a container port name");
    }
    if (port.name !== undefined && typeof port.name !== "string") {
      problems.add(at(path, "name"), "must be a string");
    } else if (typeof port.name === "string") {
      const first = names.get(port.name);
      if (first !== undefined) problems.add(at(path, "name"), `duplicates the name of spec.ports[${first}]`);
      else names.set(port.name, i);
    } else if (ports.length > 1) {
      // Kubernetes requires names once there are several ports: they key the Endpoints.
      problems.add(at(path, "name"), "is required when a Service has more than one port");
    }
  });
}

export function checkNode(obj: Json, problems: Problems): void {
  const st = record(obj.status);
  eachItem(st.addresses, "status.addresses", problems, (addr, path) => {
    if (typeof addr.type !== "string" || addr.type === "") problems.add(at(path, "type"), "is required");
    if (typeof addr.address !== "string" || addr.address === "") {
      problems.add(at(path, "address"), "is required");
    } else if ((addr.type === "InternalIP" || addr.type === "ExternalIP") && !isIp(addr.address)) {
      problems.add(at(path, "address"), `${quote(addr.address)} is not an IPv4 or IPv6 address`);
    }
  });
}

function checkClusterIp(value: unknown, path: string, problems: Problems): void {
  if (typeof value !== "string") problems.add(path, "must be a string");
  else if (value !== "" && value !== "None" && !isIp(value)) {
    problems.add(path, `${quote(value)} must be an IP address or "None" (headless)`);
  }
}

function optionalString(parent: Json, base: string, field: string, problems: Problems): void {
  if (parent[field] !== undefined && typeof parent[field] !== "string") {
    problems.add(at(base, field), "must be a string");
  }
}
