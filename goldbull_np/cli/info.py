"""``goldbull info``: versions, the C extension, threads, process settings, each kernel's backend."""
import platform
import sys


def register(sub) -> None:
    p = sub.add_parser("info", help="versions, C extension, threads, kernel backends")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_info)


def cmd_info(args) -> int:
    """Print versions, the C extension status, thread counts, the process-wide runtime settings
    (goldbull_np.runtime: applied or not, and why) and each kernel's backend."""
    import numpy as np

    from .. import __version__, kernels, runtime

    info = kernels.info()  # loads the C extension, so the malloc setting is decided by now
    settings = runtime.report()
    if args.json:
        import json

        print(json.dumps({"goldbull_np": __version__, "python": platform.python_version(),
                          "numpy": np.__version__, **info, "runtime": settings}, indent=2, default=str))
        return 0
    c = info["c_extension"]
    numba = info["numba"]
    threads = info["threads"]
    print(f"goldbull_np {__version__}")
    print(f"python      {platform.python_version()} ({sys.executable})")
    print(f"numpy       {np.__version__}")
    print(f"numba       {numba['version'] or 'not installed'}")
    print(f"cffi        {info['cffi_version']}")
    print(f"C extension {'loaded' if c['loaded'] else 'NOT loaded: ' + str(c.get('reason'))}"
          + (f" (ISA tier {c['isa']}; this CPU: {c['cpu_isa']})" if c['loaded'] and 'isa' in c else ""))
    print(f"threads     cpus={threads['cpus']} openblas={threads['openblas']} openmp={threads['openmp']} "
          f"numba={threads['numba'] if threads['numba'] is not None else '(not loaded)'}")
    print(f"backend     GOLDBULL_BACKEND={info['selection']}")
    print(f"runtime     process-wide settings (all off: {runtime.MASTER_SWITCH}=0)")
    for name, st in settings.items():
        print(f"  {name:<23} {'applied' if st['applied'] else 'not applied':<12} {st['reason']} "
              f"(off: {st['opt_out']})")
    print("kernel                    float32    float64")
    for name, row in info["kernels"].items():
        print(f"  {name:<23} {row.get('float32') or '-':<10} {row.get('float64') or '-'}")
    return 0
