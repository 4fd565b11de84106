// Reference browser-only SMART app for the end-to-end benchmark: the way most
// SMART apps are built, with fhirclient doing the launch and every FHIR
// request in the browser. Never shipped; see server/bench/e2e.
import FHIR from "fhirclient";

const scope = "launch openid fhirUser patient/Patient.read patient/Observation.read";

function showError(err) {
  const el = document.querySelector('[data-testid="spa-error"]');
  el.textContent = (err && (err.name + ": " + err.message)) || String(err);
}

function addRows(tbody, bundle) {
  let n = 0;
  const frag = document.createDocumentFragment();
  for (const e of bundle.entry || []) {
    const o = e.resource;
    if (!o || o.resourceType !== "Observation" || o.status === "entered-in-error") continue;
    const tr = document.createElement("tr");
    tr.dataset.testid = "result-row";
    const q = o.valueQuantity;
    const value = q ? (q.comparator || "") + q.value + " " + (q.unit || "") : (o.valueString || (o.valueCodeableConcept && o.valueCodeableConcept.text) || "");
    for (const text of [o.code && (o.code.text || (o.code.coding && o.code.coding[0] && o.code.coding[0].display)), value, o.effectiveDateTime || ""]) {
      const td = document.createElement("td");
      td.textContent = text || "";
      tr.appendChild(td);
    }
    frag.appendChild(tr);
    n++;
  }
  tbody.appendChild(frag);
  return n;
}

async function main() {
  const clientId = document.documentElement.dataset.clientId;
  if (location.pathname.endsWith("/launch.html")) {
    await FHIR.oauth2.authorize({ clientId, scope, redirectUri: "index.html" });
    return;
  }
  const client = await FHIR.oauth2.ready();
  const tbody = document.querySelector("#rows");
  let count = 0;
  const patient = client.patient.read().then((p) => {
    const n = p.name && p.name[0];
    document.querySelector('[data-testid="banner-name"]').textContent = n ? (n.family + ", " + (n.given || []).join(" ")) : "";
  });
  await client.request(
    "Observation?patient=" + encodeURIComponent(client.patient.id) + "&category=laboratory&_count=100",
    { pageLimit: 0, onPage: (bundle) => { count += addRows(tbody, bundle); } },
  );
  await patient;
  document.querySelector('[data-testid="result-count"]').textContent = count + " results";
}

main().catch(showError);
