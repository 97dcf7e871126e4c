"""Run codesift's CLI as if torch were not installed: `python tests/no_torch.py index ...`.

A meta-path finder makes every `import torch` (and its submodules) fail with ImportError, as on a
CPU install without the `gpu` extra. At exit it prints `TORCH_LOADED=<bool>` to stderr, so that a
test can check that nothing loaded torch some other way.
"""
import atexit
import sys


class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"No module named {name!r} (blocked: a CPU install without torch)")
        return None


sys.meta_path.insert(0, NoTorch())
atexit.register(lambda: sys.stderr.write(f"TORCH_LOADED={'torch' in sys.modules}\n"))

if __name__ == "__main__":
    from codesift.cli import main

    sys.argv[0] = "codesift"
    main()
