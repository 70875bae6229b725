#!/usr/bin/env bash
# Builds callbox-cli and runs it on the built-in templates: checks them, then shows the
# requests Callbox would send to HubSpot when a call from +1 415 555 0100 rings (a dry run:
# nothing leaves the machine; secrets are masked).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build --release --locked -p callbox-cli
cli=target/release/callbox-cli

echo "== callbox-cli template check templates/*.xml" >&2
"$cli" template check templates/*.xml || true

echo "== a call rings: SyncContactAuto on templates/hubspot.xml (dry run)" >&2
"$cli" template run templates/hubspot.xml --scenario SyncContactAuto \
  --field access_token=pat-na1-0000-demo-token \
  --var Phone=+14155550100 --var CallerNumber=+14155550100 --var Communication_Type=Inbound \
  --dry-run

echo "== the call ends: CallJournal on templates/zoho-crm.xml (dry run)" >&2
"$cli" template run templates/zoho-crm.xml --scenario CallJournal \
  --field api_domain=https://www.zohoapis.com --field crm_domain=https://crm.zoho.com \
  --field client_id=1000.DEMO --field client_secret=demo-secret --field AccessToken=1000.demo.token \
  --var 'Call_From=Ann Lee<+14155550100>' --var 'Call_To=Agent<1001>' --var ContactNumber=+14155550100 \
  --var Communication_Type=Inbound --var Call_Status=Completed --var Call_Log_Status='Incoming Call' \
  --var CallDisposition=ANSWERED --var StartTimeUnix=1717236000 --var Talk_Duration=00:05:01 \
  --var Talk_Duration_Sec=301 --var 'Time=2024-06-01 10:00:00' --var ContactId=4150868002849 \
  --var ContactSyncType=Contacts --dry-run
