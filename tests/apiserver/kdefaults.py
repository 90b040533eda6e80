"""Validation and defaulting of written objects, as the real API server does
them (F12), plus the ClusterIP and NodePort allocators.

check_object(obj) checks kind, apiVersion, name and namespace; service(obj,
old, owner, alloc) and endpointslice(obj) check the rest and fill in the
defaults, in place (obj is a fresh dict); service() returns the addresses
and node ports the Service holds, for Allocator.hold(). They raise Invalid
(answered 422 by the control API) or BadKind (400) where the real server
would refuse the object.

Services:
  spec.type ClusterIP; spec.sessionAffinity None; ports[].protocol TCP,
  ports[].targetPort = port; externalTrafficPolicy Cluster for NodePort and
  LoadBalancer; internalTrafficPolicy Cluster (not for ExternalName);
  sessionAffinityConfig.clientIP.timeoutSeconds 10800 with ClientIP;
  status.loadBalancer.ingress[].ipMode VIP where ip is set; a ClusterIP from
  10.96.0.0/12 (IPv6: fd00:10:96::/112) when absent, clusterIPs, ipFamilies,
  ipFamilyPolicy (this is a dual-stack cluster: PreferDualStack and
  RequireDualStack get an address of each family, and a headless Service
  without a selector gets both families and RequireDualStack); NodePorts
  from 30000-32767 for NodePort and LoadBalancer (healthCheckNodePort too
  for LoadBalancer with externalTrafficPolicy Local);
  allocateLoadBalancerNodePorts true for LoadBalancer. Dynamic
  allocation starts above the "static" lower band (10.96.1.0, port 30128),
  as the real allocators prefer, so explicit low addresses rarely collide.
  spec.clusterIP is immutable on replace; an address already held by another
  Service is refused.
EndpointSlices: ports[].name "" and ports[].protocol TCP; addressType is
  required (IPv4, IPv6, FQDN); each endpoint needs addresses. An empty or
  absent endpoints or ports list is stored as null, as the real server
  returns it (no omitempty on them, and protobuf keeps no empty list).
"""

import ipaddress
import re

KINDS = {
    # kind: (apiVersion, plural, namespaced, list kind)
    "Service": ("v1", "services", True, "ServiceList"),
    "EndpointSlice": ("discovery.k8s.io/v1", "endpointslices", True, "EndpointSliceList"),
    "Node": ("v1", "nodes", False, "NodeList"),
}

_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_PROTOCOLS = ("TCP", "UDP", "SCTP")
_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


class Invalid(ValueError):
    """422 Invalid."""


class BadKind(ValueError):
    """400 BadRequest: not an object this server stores."""


class Allocator:
    """Which ClusterIPs and NodePorts are held, and by whom (a store key)."""

    V4 = ipaddress.ip_network("10.96.0.0/12")
    V6 = ipaddress.ip_network("fd00:10:96::/112")
    PORTS = (30000, 32767)

    def __init__(self):
        self.ips = {}      # normalised address -> owner
        self.ports = {}    # node port -> owner
        self.owned = {}    # owner -> (addresses, ports)
        self.cursor = {4: 256, 6: 256}
        self.port_cursor = 128

    def ip_owner(self, ip):
        return self.ips.get(ip)

    def new_ip(self, family, owner, taken):
        net = self.V4 if family == 4 else self.V6
        size = net.num_addresses
        for _ in range(size):
            off = self.cursor[family]
            self.cursor[family] = off + 1 if off + 1 < size - 1 else 2
            if off < 2 or off >= size - 1:
                continue
            ip = str(net.network_address + off)
            if ip not in self.ips and ip not in taken:
                return ip
        raise Invalid("spec.clusterIPs: Internal error: range %s is full" % net)

    def new_port(self, taken):
        lo, hi = self.PORTS
        n = hi - lo + 1
        for _ in range(n):
            p = lo + self.port_cursor
            self.port_cursor = (self.port_cursor + 1) % n
            if p not in self.ports and p not in taken:
                return p
        raise Invalid("spec.ports.nodePort: range 30000-32767 is full")

    def release(self, owner):
        ips, ports = self.owned.pop(owner, ((), ()))
        for ip in ips:
            self.ips.pop(ip, None)
        for p in ports:
            self.ports.pop(p, None)

    def hold(self, owner, ips, ports):
        """owner now holds exactly these addresses and ports."""
        self.release(owner)
        for ip in ips:
            self.ips[ip] = owner
        for p in ports:
            self.ports[p] = owner
        if ips or ports:
            self.owned[owner] = (list(ips), list(ports))


def check_object(obj):
    """Kind, apiVersion, name and namespace: returns (kind, namespace, name)."""
    if not isinstance(obj, dict):
        raise BadKind("the object must be a JSON object")
    kind = obj.get("kind")
    if kind not in KINDS:
        raise BadKind("unknown kind %r (Service, EndpointSlice or Node)" % (kind,))
    api_version, _, namespaced, _ = KINDS[kind]
    if obj.get("apiVersion", api_version) != api_version:
        raise BadKind("kind %s has apiVersion %s, not %r" % (kind, api_version, obj.get("apiVersion")))
    obj["apiVersion"] = api_version
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise Invalid("metadata: Required value")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise Invalid("metadata.name: Required value: name or generateName is required")
    name_re = _LABEL1035_RE if kind == "Service" else _SUBDOMAIN_RE
    if len(name) > (63 if kind == "Service" else 253) or not name_re.match(name):
        raise Invalid("metadata.name: Invalid value: %r: a lowercase RFC 1123 name is required" % name)
    if namespaced:
        ns = meta.get("namespace") or "default"
        if not _LABEL1035_RE.match(ns) and not _SUBDOMAIN_RE.match(ns):
            raise Invalid("metadata.namespace: Invalid value: %r" % ns)
        meta["namespace"] = ns
    else:
        ns = ""
        meta.pop("namespace", None)
    for field in ("labels", "annotations"):
        if field in meta and not isinstance(meta[field], dict):
            raise Invalid("metadata.%s: must be an object" % field)
    return kind, ns, name


def _ip(text, field):
    try:
        return ipaddress.ip_address(text)
    except (ValueError, TypeError):
        raise Invalid("%s: Invalid value: %r: must be a valid IP address" % (field, text))


def _service_ports(spec, old_spec, kind_type, alloc, taken_ports):
    """Check and default spec.ports; allocate their node ports."""
    ports = spec.get("ports")
    if ports is None:
        ports = []
    if not isinstance(ports, list):
        raise Invalid("spec.ports: must be a list")
    old_node_ports = {}
    for p in (old_spec or {}).get("ports") or []:
        if p.get("nodePort"):
            old_node_ports[(p.get("port"), p.get("protocol"))] = p["nodePort"]
    seen = set()
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            raise Invalid("spec.ports[%d]: must be an object" % i)
        port = p.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise Invalid("spec.ports[%d].port: Invalid value: %r: must be between 1 and 65535" % (i, port))
        p.setdefault("protocol", "TCP")
        if p["protocol"] not in _PROTOCOLS:
            raise Invalid("spec.ports[%d].protocol: Unsupported value: %r" % (i, p["protocol"]))
        if (port, p["protocol"]) in seen:
            raise Invalid("spec.ports[%d]: Duplicate value: port %d/%s" % (i, port, p["protocol"]))
        seen.add((port, p["protocol"]))
        if len(ports) > 1 and not p.get("name"):
            raise Invalid("spec.ports[%d].name: Required value" % i)
        if "targetPort" not in p or p["targetPort"] in (0, "", None):
            p["targetPort"] = port
        wants_node_port = kind_type == "NodePort" or (
            kind_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True))
        if wants_node_port and not p.get("nodePort"):
            p["nodePort"] = old_node_ports.get((port, p["protocol"])) or alloc.new_port(taken_ports)
        if kind_type in ("NodePort", "LoadBalancer") and p.get("nodePort"):
            lo, hi = alloc.PORTS
            if not isinstance(p["nodePort"], int) or not lo <= p["nodePort"] <= hi:
                raise Invalid("spec.ports[%d].nodePort: Invalid value: %r: provided port is not in "
                              "the valid range. The range of valid ports is %d-%d" % (i, p["nodePort"], lo, hi))
            taken_ports.add(p["nodePort"])
        elif p.get("nodePort"):
            raise Invalid("spec.ports[%d].nodePort: Forbidden: may not be used when `type` is %r" % (i, kind_type))
    return ports


def _cluster_ips(spec, old_spec, owner, alloc):
    cip = spec.get("clusterIP") or ""
    cips = spec.get("clusterIPs") or []
    if not isinstance(cips, list):
        raise Invalid("spec.clusterIPs: must be a list")
    if not cip and cips:
        cip = cips[0]
    old_cip = (old_spec or {}).get("clusterIP") or ""
    if not cip and old_cip:
        cip, cips = old_cip, list((old_spec or {}).get("clusterIPs") or [old_cip])
    if old_cip and cip != old_cip:
        raise Invalid("spec.clusterIPs[0]: Invalid value: %r: may not change once set (was %r)"
                      % (cip, old_cip))
    families = spec.get("ipFamilies") or []
    policy = spec.get("ipFamilyPolicy")
    if policy not in (None, "SingleStack", "PreferDualStack", "RequireDualStack"):
        raise Invalid("spec.ipFamilyPolicy: Unsupported value: %r" % policy)
    if not cip:
        family = 6 if families[:1] == ["IPv6"] else 4
        cip = alloc.new_ip(family, owner, set())
    if not cips:
        cips = [cip]
    dual = policy in ("PreferDualStack", "RequireDualStack") or len(families) == 2
    if dual and cip != "None" and len(cips) == 1:
        # The second family's address, as a dual-stack cluster allocates it.
        other = 4 if _ip(cip, "spec.clusterIP").version == 6 else 6
        cips = cips + [alloc.new_ip(other, owner, set())]
    if cips[0] != cip:
        raise Invalid("spec.clusterIPs[0]: Invalid value: %r: must match spec.clusterIP %r" % (cips[0], cip))
    if len(cips) > 2:
        raise Invalid("spec.clusterIPs: Invalid value: at most two addresses")
    held = []
    if cip == "None":
        if len(cips) != 1:
            raise Invalid("spec.clusterIPs[1]: Invalid value: must not be set for a headless service")
        families = families or ["IPv4"]
        if policy is None and not spec.get("selector"):
            dual = True  # headless without a selector: both families, as a dual-stack cluster
        if dual and len(families) == 1:
            families = families + ["IPv6" if families[0] == "IPv4" else "IPv4"]
    else:
        fams = []
        for i, a in enumerate(cips):
            addr = _ip(a, "spec.clusterIPs[%d]" % i)
            norm = str(addr)
            if norm != a:
                raise Invalid("spec.clusterIPs[%d]: Invalid value: %r: must be in canonical form %r"
                              % (i, a, norm))
            owner_now = alloc.ip_owner(norm)
            if owner_now is not None and owner_now != owner:
                raise Invalid("spec.clusterIPs: Invalid value: %r: failed to allocate IP %s: "
                              "provided IP is already allocated" % (cips, norm))
            fams.append("IPv%d" % addr.version)
            held.append(norm)
        if len(fams) == 2 and fams[0] == fams[1]:
            raise Invalid("spec.clusterIPs[1]: Invalid value: may specify no more than one IP for each IP family")
        if families and fams[:len(families)] != families:
            raise Invalid("spec.ipFamilies: Invalid value: %r: must match spec.clusterIPs %r" % (families, fams))
        families = fams
    spec["clusterIP"] = cip
    spec["clusterIPs"] = cips
    spec["ipFamilies"] = families
    spec.setdefault("ipFamilyPolicy", "RequireDualStack" if len(families) == 2 else "SingleStack")
    return held


def service(obj, old, owner, alloc):
    """Default and check a Service; returns (ips, ports) to hold."""
    spec = obj.get("spec")
    if spec is None:
        spec = obj["spec"] = {}
    if not isinstance(spec, dict):
        raise Invalid("spec: must be an object")
    old_spec = (old or {}).get("spec")
    stype = spec.setdefault("type", "ClusterIP")
    if stype not in _TYPES:
        raise Invalid("spec.type: Unsupported value: %r" % stype)
    affinity = spec.setdefault("sessionAffinity", "None")
    if affinity == "ClientIP":
        sac = spec.setdefault("sessionAffinityConfig", {})
        cfg = sac.setdefault("clientIP", {})
        cfg.setdefault("timeoutSeconds", 10800)
    elif affinity != "None":
        raise Invalid("spec.sessionAffinity: Unsupported value: %r" % affinity)
    if stype == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    taken_ports = set()
    ports = _service_ports(spec, old_spec, stype, alloc, taken_ports)
    if "ports" in spec and not ports:
        del spec["ports"]  # omitempty on the real server
    held_ips = []
    if stype == "ExternalName":
        if not spec.get("externalName"):
            raise Invalid("spec.externalName: Required value")
        if spec.get("clusterIP"):
            raise Invalid("spec.clusterIP: Forbidden: may not be set for ExternalName services")
    else:
        held_ips = _cluster_ips(spec, old_spec, owner, alloc)
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if not ports and spec["clusterIP"] != "None":
            raise Invalid("spec.ports: Required value")
    if stype in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if stype == "LoadBalancer":
        if spec["externalTrafficPolicy"] == "Local" and not spec.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = (old_spec or {}).get("healthCheckNodePort") or alloc.new_port(taken_ports)
    if spec.get("healthCheckNodePort"):
        taken_ports.add(spec["healthCheckNodePort"])
    for p in taken_ports:
        holder = alloc.ports.get(p)
        if holder is not None and holder != owner:
            raise Invalid("spec.ports.nodePort: Invalid value: %d: provided port is already allocated" % p)
    status = obj.setdefault("status", {})
    lb = status.setdefault("loadBalancer", {})
    for ing in lb.get("ingress") or []:
        if ing.get("ip") and not ing.get("ipMode"):
            ing["ipMode"] = "VIP"
    return held_ips, sorted(taken_ports)


def endpointslice(obj):
    if obj.get("addressType") not in ("IPv4", "IPv6", "FQDN"):
        raise Invalid("addressType: Unsupported value: %r: supported values: FQDN, IPv4, IPv6"
                      % (obj.get("addressType"),))
    if not obj.get("ports"):
        obj["ports"] = None
    for i, p in enumerate(obj["ports"] or []):
        if not isinstance(p, dict):
            raise Invalid("ports[%d]: must be an object" % i)
        p.setdefault("name", "")
        p.setdefault("protocol", "TCP")
        if p["protocol"] not in _PROTOCOLS:
            raise Invalid("ports[%d].protocol: Unsupported value: %r" % (i, p["protocol"]))
    if not obj.get("endpoints"):
        obj["endpoints"] = None  # as the real server returns an empty list
    for i, ep in enumerate(obj["endpoints"] or []):
        if not isinstance(ep, dict) or not ep.get("addresses"):
            raise Invalid("endpoints[%d].addresses: Required value" % i)
