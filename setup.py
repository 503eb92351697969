"""Packaging for paraproxy; the version lives in paraproxy/_version.py only."""

from pathlib import Path

from setuptools import find_packages, setup

_here = Path(__file__).parent
_about: dict = {}
exec((_here / "paraproxy" / "_version.py").read_text(), _about)

setup(
    name="paraproxy",
    version=_about["__version__"],
    description=(
        "Make paramiko's SSHClient.connect follow ~/.ssh/config the way OpenSSH does: "
        "ProxyCommand, ProxyJump and multi-hop ssh chains"
    ),
    long_description=(_here / "README.rst").read_text(),
    long_description_content_type="text/x-rst",
    license="LGPL-2.1-or-later",
    packages=find_packages(include=["paraproxy", "paraproxy.*"]),
    package_data={"paraproxy": ["py.typed"]},
    python_requires=">=3.9",
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
            "fabric>=3",  # docs/migration.rst runs a Fabric example
        ],
    },
    entry_points={"console_scripts": ["paraproxy = paraproxy.__main__:main"]},
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Developers",
        "Intended Audience :: System Administrators",
        "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)",
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
    ],
)
