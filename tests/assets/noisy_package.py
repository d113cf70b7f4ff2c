"""Imported as the module ``noisy_package``: a package that prints a notice on stderr and warns
while it imports, as the old ``gym`` does when a suite's package pulls it in."""

from __future__ import annotations

import sys
import warnings

print("Noisy has been unmaintained since 2022.\nPlease upgrade.\nSeriously.", file=sys.stderr)
warnings.warn("noisy_package is deprecated, use something else", DeprecationWarning, stacklevel=1)
