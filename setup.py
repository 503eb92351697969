"""Packaging for paraproxy; the version lives in paraproxy/_version.py only."""

import re
from pathlib import Path

import setuptools
from setuptools import find_packages, setup

_here = Path(__file__).parent
_about: dict = {}
exec((_here / "paraproxy" / "_version.py").read_text(), _about)

_LICENSE = "LGPL-2.1-or-later"
# setuptools 77+ writes PEP 639's License-Expression and deprecates License classifiers;
# older ones (down to the 61 pyproject.toml asks for) know only the License field.
_setuptools = tuple(int(n) for n in re.findall(r"\d+", setuptools.__version__)[:2])
if _setuptools >= (77, 0):
    _license: dict = {"license_expression": _LICENSE}
    _license_classifiers: list = []
else:
    _license = {"license": _LICENSE}
    _license_classifiers = [
        "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)",
    ]

setup(
    name="paraproxy",
    version=_about["__version__"],
    description=(
        "Make paramiko's SSHClient.connect follow ~/.ssh/config the way OpenSSH does: "
        "ProxyCommand, ProxyJump and multi-hop ssh chains"
    ),
    long_description=(_here / "README.rst").read_text(),
    long_description_content_type="text/x-rst",
    **_license,
    license_files=["LICENSE"],
    packages=find_packages(include=["paraproxy", "paraproxy.*"]),
    package_data={"paraproxy": ["py.typed"]},
    python_requires=">=3.9",
    # Checked by the version matrix (noxfile.py: 3.0.0, 3.5.1, 4.0.0, 5.0.0, 5.1.0).
    install_requires=["paramiko>=3.0,<6"],
    extras_require={
        "test": [
            "pytest>=7",
            "pytest-timeout>=2",
            "hypothesis>=6",
            "mypy>=1.5",
            "ruff>=0.4",
            "types-paramiko",
            "sphinx>=7",
            "fabric>=3",  # docs/migration.rst runs a Fabric example; tests/test_ecosystem.py
            "scp>=0.16",  # tests/test_ecosystem.py
            "sshtunnel>=0.5.1",  # 0.4.0 needs paramiko.DSSKey, which paramiko 4 removed
            "build>=1",  # tests/test_packaging.py
            "twine>=5",  # tests/test_packaging.py: twine check --strict
            "nox>=2024.3.2",  # the paramiko version matrix (noxfile.py)
        ],
    },
    entry_points={"console_scripts": ["paraproxy = paraproxy.__main__:main"]},
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Developers",
        "Intended Audience :: System Administrators",
        "Operating System :: POSIX :: Linux",
        "Operating System :: MacOS",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Internet",
        "Topic :: System :: Networking",
        "Typing :: Typed",
        *_license_classifiers,
    ],
)
