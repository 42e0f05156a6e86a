"""Whether a snippet, run in a fresh interpreter, leaves ``torch._dynamo`` imported.

``torch.optim`` optimisers import ``torch._dynamo`` on their first construction in a process
(2-3 s); fstat's fused Adam path must not, so several families test it through this probe.
"""

import subprocess
import sys


def imports_dynamo(code):
    """Run ``code`` in a fresh interpreter; True if ``torch._dynamo`` is imported after it."""
    probe = code + "\nimport sys\nprint('torch._dynamo' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip().splitlines()[-1] == "True"
