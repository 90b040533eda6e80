#!/usr/bin/env python3
"""Turn a cluster state (a v1 List JSON, as scripts/gen-cluster.py or
`kubectl get services,endpointslices -A -o json` writes) into what each
datapath of the benchmark loads:

  rules.py iptables STATE.json [--cluster-cidr CIDR]
      iptables-restore input (*nat), kube-proxy's iptables-mode layout.
      The same file loads with iptables-legacy-restore and
      iptables-nft-restore.
  rules.py nft STATE.json [--cluster-cidr CIDR]
      `nft -f` input, kube-proxy's nftables-mode layout (table ip kube-proxy).
  rules.py minimal STATE.json PINDIR
      `bpftool batch file` lines filling PINDIR/min_svc (tests/bench/
      minimal.bpf.c): each service port's ClusterIP:port -> its first
      endpoint:port.

Only IPv4 ClusterIPs and IPv4 EndpointSlices are used. A service port gets
the ready endpoints (conditions.ready absent or true) of the slices that
carry a port of the same name and protocol, as kube-proxy does; service
ports without endpoints are left out (kube-proxy rejects those in the filter
table, which the benchmark does not need).

Names follow kube-proxy: iptables chains KUBE-SVC-/KUBE-SEP- + the first 16
characters of base32(sha256(...)); nftables chains
service-HASH8-ns/name/proto/port and endpoint-HASH8-ns/name/proto/port__ip/port.
--cluster-cidr adds kube-proxy's "masquerade what comes from outside the
cluster" rule to every service (off by default, as with no cluster CIDR).
"""
import argparse
import base64
import hashlib
import ipaddress
import json
import sys

MASQ_MARK = "0x4000"


# --- the state ---------------------------------------------------------------

class ServicePort:
    __slots__ = ("ns", "name", "port_name", "proto", "cluster_ip", "port", "endpoints")

    def __init__(self, ns, name, port_name, proto, cluster_ip, port):
        self.ns, self.name, self.port_name = ns, name, port_name
        self.proto, self.cluster_ip, self.port = proto, cluster_ip, port
        self.endpoints = []          # [(ip, port)], state order, no duplicates

    def spn(self):
        """kube-proxy's ServicePortName.String(): ns/name[:port]."""
        s = f"{self.ns}/{self.name}"
        return f"{s}:{self.port_name}" if self.port_name else s


def is_v4(addr):
    try:
        return ipaddress.ip_address(addr).version == 4
    except ValueError:
        return False


def load_state(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    items = doc.get("items", [doc]) if isinstance(doc, dict) else doc
    svcs, slices = [], []
    for it in items:
        kind = it.get("kind")
        if kind == "Service":
            svcs.append(it)
        elif kind == "EndpointSlice":
            slices.append(it)

    ports = []                       # service ports in state order
    by_key = {}                      # (ns, name, port_name, proto) -> ServicePort
    for s in svcs:
        md, spec = s.get("metadata", {}), s.get("spec", {})
        if spec.get("type") == "ExternalName":
            continue
        ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
        ip = next((a for a in ips if a and a != "None" and is_v4(a)), None)
        if ip is None:
            continue
        ns, name = md.get("namespace", "default"), md["name"]
        for p in spec.get("ports") or []:
            sp = ServicePort(ns, name, p.get("name", ""), p.get("protocol", "TCP").lower(),
                             ip, int(p["port"]))
            key = (ns, name, sp.port_name, sp.proto)
            if key not in by_key:
                by_key[key] = sp
                ports.append(sp)

    for sl in slices:
        if sl.get("addressType", "IPv4") != "IPv4":
            continue
        md = sl.get("metadata", {})
        svc = (md.get("labels") or {}).get("kubernetes.io/service-name")
        if not svc:
            continue
        ns = md.get("namespace", "default")
        ready = []
        for ep in sl.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            addrs = ep.get("addresses") or []
            if addrs and is_v4(addrs[0]):
                ready.append(addrs[0])
        for p in sl.get("ports") or []:
            if p.get("port") is None:
                continue
            sp = by_key.get((ns, svc, p.get("name", "") or "", p.get("protocol", "TCP").lower()))
            if sp is None:
                continue
            seen = set(sp.endpoints)
            for a in ready:
                e = (a, int(p["port"]))
                if e not in seen:
                    seen.add(e)
                    sp.endpoints.append(e)
    return [sp for sp in ports if sp.endpoints]


def sorted_endpoints(sp):
    """kube-proxy's order: sorted by the endpoint's "ip:port" string."""
    return sorted(sp.endpoints, key=lambda e: f"{e[0]}:{e[1]}")


def b32sha(s):
    return base64.b32encode(hashlib.sha256(s.encode()).digest()).decode()


# --- iptables ----------------------------------------------------------------

def iptables(ports, cluster_cidr):
    chains, rules = [], []
    for sp in ports:
        spn, proto = sp.spn(), sp.proto
        svc_chain = "KUBE-SVC-" + b32sha(spn + proto)[:16]
        chains.append(svc_chain)
        rules.append(f'-A KUBE-SERVICES -d {sp.cluster_ip}/32 -p {proto} -m comment '
                     f'--comment "{spn} cluster IP" -m {proto} --dport {sp.port} -j {svc_chain}')
        if cluster_cidr:
            rules.append(f'-A {svc_chain} ! -s {cluster_cidr} -d {sp.cluster_ip}/32 -p {proto} '
                         f'-m comment --comment "{spn} cluster IP" -m {proto} --dport {sp.port} '
                         f'-j KUBE-MARK-MASQ')
        eps = sorted_endpoints(sp)
        n = len(eps)
        for i, (ip, port) in enumerate(eps):
            ep = f"{ip}:{port}"
            sep_chain = "KUBE-SEP-" + b32sha(spn + proto + ep)[:16]
            chains.append(sep_chain)
            stat = (f" -m statistic --mode random --probability {1.0 / (n - i):0.10f}"
                    if i < n - 1 else "")
            rules.append(f'-A {svc_chain} -m comment --comment "{spn} -> {ep}"{stat} -j {sep_chain}')
            rules.append(f'-A {sep_chain} -s {ip}/32 -m comment --comment "{spn}" -j KUBE-MARK-MASQ')
            rules.append(f'-A {sep_chain} -p {proto} -m comment --comment "{spn}" -m {proto} '
                         f'-j DNAT --to-destination {ep}')
    out = ["*nat",
           ":PREROUTING ACCEPT [0:0]",
           ":INPUT ACCEPT [0:0]",
           ":OUTPUT ACCEPT [0:0]",
           ":POSTROUTING ACCEPT [0:0]",
           ":KUBE-SERVICES - [0:0]",
           ":KUBE-NODEPORTS - [0:0]",
           ":KUBE-POSTROUTING - [0:0]",
           ":KUBE-MARK-MASQ - [0:0]"]
    out += [f":{c} - [0:0]" for c in chains]
    out += ['-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
            '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
            '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
            f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
            f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}",
            '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
            '-j MASQUERADE --random-fully',
            f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}"]
    out += rules
    out += ['-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must '
            'be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
            "COMMIT", ""]
    return "\n".join(out)


# --- nftables ----------------------------------------------------------------

def hash_and_truncate(name):
    """kube-proxy (nftables): 8 characters of base32(sha256) + "-" + name."""
    name = b32sha(name)[:8] + "-" + name
    return name[:253] + "..." if len(name) > 256 else name


def nft(ports, cluster_cidr):
    T = "ip kube-proxy"
    out = [
        # Start from nothing, in the same transaction (the file reloads).
        f"add table {T}",
        f"delete table {T}",
        f'add table {T} {{ comment "rules for kube-proxy" ; }}',
        f"add chain {T} mark-for-masquerade",
        f"add rule {T} mark-for-masquerade mark set mark or {MASQ_MARK}",
        f"add chain {T} masquerading",
        f"add rule {T} masquerading mark and {MASQ_MARK} == 0 return",
        f"add rule {T} masquerading mark set mark xor {MASQ_MARK}",
        f"add rule {T} masquerading masquerade fully-random",
        f"add chain {T} services",
        f"add chain {T} nat-output {{ type nat hook output priority -100 ; }}",
        f"add rule {T} nat-output jump services",
        f"add chain {T} nat-postrouting {{ type nat hook postrouting priority 100 ; }}",
        f"add rule {T} nat-postrouting jump masquerading",
        f"add chain {T} nat-prerouting {{ type nat hook prerouting priority -100 ; }}",
        f"add rule {T} nat-prerouting jump services",
        f"add map {T} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; "
        f'comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }}',
        f"add rule {T} services ip daddr . meta l4proto . th dport vmap @service-ips",
    ]
    elements = []
    for sp in ports:
        proto = sp.proto
        base = f"{sp.ns}/{sp.name}/{proto}/{sp.port_name}"
        svc_chain = "service-" + hash_and_truncate(base)
        out.append(f"add chain {T} {svc_chain}")
        if cluster_cidr:
            out.append(f"add rule {T} {svc_chain} ip daddr {sp.cluster_ip} {proto} dport {sp.port} "
                       f"ip saddr != {cluster_cidr} jump mark-for-masquerade")
        eps = sorted_endpoints(sp)
        targets = []
        for i, (ip, port) in enumerate(eps):
            ep_chain = "endpoint-" + hash_and_truncate(f"{base}__{ip}/{port}")
            targets.append(f"{i} : goto {ep_chain}")
            out.append(f"add chain {T} {ep_chain}")
            out.append(f"add rule {T} {ep_chain} ip saddr {ip} jump mark-for-masquerade")
            out.append(f"add rule {T} {ep_chain} meta l4proto {proto} dnat to {ip}:{port}")
        out.append(f"add rule {T} {svc_chain} numgen random mod {len(eps)} vmap "
                   f"{{ {' , '.join(targets)} }}")
        elements.append(f"add element {T} service-ips {{ {sp.cluster_ip} . {proto} . {sp.port} "
                        f": goto {svc_chain} }}")
    out += elements
    out.append("")
    return "\n".join(out)


# --- minimal (bpftool batch) -------------------------------------------------

def hexbytes(ip, port):
    b = ipaddress.IPv4Address(ip).packed + port.to_bytes(2, "big") + b"\0\0"
    return " ".join(f"{x:02x}" for x in b)


def minimal(ports, pindir):
    m = pindir.rstrip("/") + "/min_svc"
    out, seen = [], set()
    for sp in ports:
        if (sp.cluster_ip, sp.port) in seen:   # the map has no protocol
            continue
        seen.add((sp.cluster_ip, sp.port))
        ip, port = sp.endpoints[0]
        out.append(f"map update pinned {m} key hex {hexbytes(sp.cluster_ip, sp.port)} "
                   f"value hex {hexbytes(ip, port)}")
    out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["iptables", "nft", "minimal"])
    ap.add_argument("state")
    ap.add_argument("pindir", nargs="?", help="minimal: the pin folder holding min_svc")
    ap.add_argument("--cluster-cidr", help="masquerade traffic to services from outside it")
    args = ap.parse_args()
    if args.cluster_cidr:
        args.cluster_cidr = str(ipaddress.IPv4Network(args.cluster_cidr, strict=False))
    if (args.mode == "minimal") != (args.pindir is not None):
        ap.error("PINDIR is for (and required by) minimal")
    ports = load_state(args.state)
    if args.mode == "iptables":
        text = iptables(ports, args.cluster_cidr)
    elif args.mode == "nft":
        text = nft(ports, args.cluster_cidr)
    else:
        text = minimal(ports, args.pindir)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
