# SAM targets, included from the root Makefile with `-include infra/sam.mk`. Run from the repo root.
#
#   make sam-validate   cfn-lint on template.yaml, SAM transform run offline, cfn-lint on its output
#   make sam-build      sam build (no container; makefile build methods, any Python 3 with pip works)
#   make sam-deploy     sam deploy; the first time per environment add SAM_DEPLOY_FLAGS=--guided
#
# Variables: SAM (the sam executable, e.g. a throw-away venv's bin/sam), SAM_CONFIG_ENV (default |
# prod, the samconfig.toml section), SAM_PYTHON (the interpreter that has cfn-lint and
# aws-sam-translator: pip install -r infra/requirements-ci.txt).

SAM ?= sam
SAM_TEMPLATE ?= template.yaml
SAM_CONFIG_ENV ?= default
SAM_DEPLOY_FLAGS ?=
SAM_PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

.PHONY: sam-validate sam-build sam-deploy

sam-validate:
	$(SAM_PYTHON) infra/check_template.py $(SAM_TEMPLATE)

sam-build:
	$(SAM) build --template-file $(SAM_TEMPLATE) --config-env $(SAM_CONFIG_ENV)

# Needs AWS credentials. DbSecretArn and DbHost have no defaults: the first deploy of an
# environment should be guided (it asks for them and saves them in samconfig.toml).
sam-deploy: sam-build
	@echo "sam deploy --config-env $(SAM_CONFIG_ENV) $(SAM_DEPLOY_FLAGS)  (first time: SAM_DEPLOY_FLAGS=--guided)"
	$(SAM) deploy --config-env $(SAM_CONFIG_ENV) $(SAM_DEPLOY_FLAGS)
