#!/usr/bin/env python3
"""Build the .deb and .rpm from the metadata in Cargo.toml ([package.metadata.lava-packaging]).

    python3 packaging/build.py [--no-build]

Produces target/debian/lava-docker_<version>-1_<arch>.deb and
target/generate-rpm/lava-docker-<version>-1.<arch>.rpm with dpkg-deb and rpmbuild.
"""
import glob
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_DIR = os.path.join(ROOT, "target")


def run(*cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def metadata():
    out = json.loads(subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"],
        check=True, cwd=ROOT, capture_output=True, text=True,
    ).stdout)
    pkg = next(p for p in out["packages"] if p["name"] == "lava-docker")
    return pkg, pkg["metadata"]["lava-packaging"], out["target_directory"]


def stage(assets, dest, target_dir):
    """Copy every asset into dest; man pages are gzipped. Returns the installed paths.
    Asset paths under `target/` follow CARGO_TARGET_DIR."""
    installed = []
    for src_glob, target, mode in assets:
        if src_glob.startswith("target/"):
            src_glob = os.path.join(target_dir, src_glob[len("target/"):])
        sources = sorted(glob.glob(os.path.join(ROOT, src_glob)))
        if not sources:
            sys.exit(f"packaging: no file matches {src_glob}")
        for src in sources:
            rel = target + os.path.basename(src) if target.endswith("/") else target
            gz = rel.startswith("usr/share/man/")
            if gz:
                rel += ".gz"
            path = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if gz:
                with open(src, "rb") as f, gzip.GzipFile(path, "wb", mtime=0) as g:
                    g.write(f.read())
            else:
                shutil.copyfile(src, path)
            os.chmod(path, int(mode, 8))
            installed.append("/" + rel)
    return installed


def build_deb(pkg, meta, tree, version, arch):
    debian = os.path.join(tree, "DEBIAN")
    os.makedirs(debian, exist_ok=True)
    size_kb = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tree) for f in fs) // 1024
    desc = meta["extended-description"].strip()
    control = f"""Package: lava-docker
Version: {version}-1
Architecture: {arch}
Maintainer: {meta['maintainer']}
Installed-Size: {size_kb}
Depends: {meta['deb-depends']}
Recommends: {meta['recommends']}
Section: {meta['section']}
Priority: {meta['priority']}
Homepage: {meta['homepage']}
Description: {pkg['description']}
 {desc}
"""
    with open(os.path.join(debian, "control"), "w") as f:
        f.write(control)
    out_dir = os.path.join(TARGET_DIR, "debian")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, f"lava-docker_{version}-1_{arch}.deb")
    run("dpkg-deb", "--root-owner-group", "-Zxz", "--build", tree, out)
    shutil.rmtree(debian)
    return out


def build_rpm(pkg, meta, tree, files, version):
    top = tempfile.mkdtemp(prefix="lava-rpm-")
    spec = os.path.join(top, "lava-docker.spec")
    # The package owns its doc directories; /usr/bin and friends belong to the system.
    owned = sorted({os.path.dirname(p) for p in files if p.startswith("/usr/share/doc/lava-docker")}
                   | {"/usr/share/doc/lava-docker"})
    file_lines = "\n".join([f"%dir {d}" for d in owned] + [f'"{p}"' for p in sorted(files)])
    with open(spec, "w") as f:
        f.write(f"""Name: lava-docker
Version: {version}
Release: 1
Summary: {pkg['description']}
License: {pkg['license']}
URL: {meta['homepage']}
Requires: {meta['rpm-requires']}
AutoReqProv: no

%description
{meta['extended-description'].strip()}

%install
cp -a {tree}/. %{{buildroot}}/

%files
{file_lines}
""")
    out_dir = os.path.join(TARGET_DIR, "generate-rpm")
    os.makedirs(out_dir, exist_ok=True)
    run("rpmbuild", "-bb", "--quiet",
        "--define", f"_topdir {top}",
        "--define", f"_rpmdir {out_dir}",
        "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
        "--define", "__os_install_post %{nil}",
        "--define", "debug_package %{nil}",
        "--define", "_build_id_links none",
        spec)
    shutil.rmtree(top)
    return glob.glob(os.path.join(out_dir, f"lava-docker-{version}-1.*.rpm"))[0]


def main():
    if "--no-build" not in sys.argv:
        run("cargo", "build", "--release", "--bins")
    pkg, meta, target_dir = metadata()
    global TARGET_DIR
    TARGET_DIR = target_dir
    run("cargo", "run", "--release", "--quiet", "--example", "gen-assets", "--",
        os.path.join(target_dir, "assets"))
    version = pkg["version"]
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    tree = tempfile.mkdtemp(prefix="lava-pkg-")
    os.chmod(tree, 0o755)
    files = stage(meta["assets"], tree, target_dir)
    for d, _, _ in os.walk(tree):
        os.chmod(d, 0o755)
    deb = build_deb(pkg, meta, tree, version, arch)
    rpm = build_rpm(pkg, meta, tree, files, version)
    shutil.rmtree(tree)
    print(deb)
    print(rpm)


if __name__ == "__main__":
    main()
