// The settings view: the SIP account, integrations (from a built-in template or a template file,
// with the template's own fields; passwords are write-only), Test Connection, sign-in, user
// association, and the desktop's own settings. Saved changes apply when Callbox restarts.

import { useEffect, useState } from "preact/hooks";
import {
  type AudioDevice,
  commands,
  type ConfigurationView,
  type DesktopSettings_Serialize as DesktopSettings,
  type FieldForm,
  type IntegrationForm,
  type PhoneForm,
} from "./bindings";

type Result = { status: "ok" } | { status: "error"; error: { message: string } };

function useFeedback(): [string | null, string | null, (r: Result, ok: string) => boolean] {
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const report = (result: Result, ok: string) => {
    if (result.status === "ok") {
      setMessage(ok);
      setError(null);
      return true;
    }
    setError(result.error.message);
    setMessage(null);
    return false;
  };
  return [message, error, report];
}

function Feedback({ message, error }: { message: string | null; error: string | null }) {
  return (
    <>
      {message && <p class="saved" data-test="saved">{message}</p>}
      {error && (
        <pre class="error" role="alert" data-test="settings-error">
          {error}
        </pre>
      )}
    </>
  );
}

export function Settings({ onClose }: { onClose: () => void }) {
  const [view, setView] = useState<ConfigurationView | null>(null);
  const [desktop, setDesktop] = useState<DesktopSettings | null>(null);
  const [devices, setDevices] = useState<AudioDevice[]>([]);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [dirty, setDirty] = useState(false);

  const reload = async () => {
    const configuration = await commands.configuration();
    if (configuration.status === "ok") setView(configuration.data);
    else setLoadError(configuration.error.message);
    setDesktop(await commands.desktopSettings());
    setDevices(await commands.audioDevices());
  };
  useEffect(() => {
    void reload();
  }, []);

  return (
    <section class="settings" data-test="settings" aria-label="Settings">
      <header>
        <h2>Settings</h2>
        <button class="ghost" onClick={onClose} data-test="close-settings">
          Close
        </button>
      </header>
      {loadError && <p class="error">{loadError}</p>}
      {view?.problems.map((p) => (
        <p class="error" key={p}>
          {p}
        </p>
      ))}
      {view && <Phone form={view.phone} onSaved={() => setDirty(true)} />}
      {view && (
        <Integrations
          view={view}
          extension={view.phone.number || view.phone.user}
          email={desktop?.email ?? ""}
          onChanged={() => {
            setDirty(true);
            void reload();
          }}
        />
      )}
      {desktop && <Desktop settings={desktop} devices={devices} onSaved={() => setDirty(true)} />}
      <footer class="apply">
        <button class="call" data-test="apply" disabled={!dirty} onClick={() => void commands.restart()}>
          Apply (restart Callbox)
        </button>
        <span class="muted">{dirty ? "Saved changes apply when Callbox restarts." : "Nothing to apply."}</span>
      </footer>
    </section>
  );
}

function Text(props: { label: string; value: string; onInput: (v: string) => void; test?: string; type?: string; placeholder?: string }) {
  return (
    <label class="field">
      <span>{props.label}</span>
      <input
        type={props.type ?? "text"}
        data-test={props.test}
        value={props.value}
        placeholder={props.placeholder}
        onInput={(e) => props.onInput((e.currentTarget as HTMLInputElement).value)}
      />
    </label>
  );
}

function Phone({ form: initial, onSaved }: { form: PhoneForm; onSaved: () => void }) {
  const [form, setForm] = useState<PhoneForm>(initial);
  const [message, error, report] = useFeedback();
  const set = (key: keyof PhoneForm) => (value: string) => setForm({ ...form, [key]: value });
  return (
    <form
      class="card"
      data-test="phone-settings"
      onSubmit={async (e) => {
        e.preventDefault();
        if (report(await commands.savePhone(form), "Phone account saved.")) {
          setForm({ ...form, password: "", password_set: form.password_set || form.password !== "" });
          onSaved();
        }
      }}
    >
      <h3>Phone account (SIP)</h3>
      <Text label="Registrar (host[:port])" value={form.registrar} onInput={set("registrar")} test="sip-registrar" />
      <Text label="Domain (optional)" value={form.domain} onInput={set("domain")} />
      <Text label="User / extension" value={form.user} onInput={set("user")} test="sip-user" />
      <Text label="Authentication ID (optional)" value={form.auth_user} onInput={set("auth_user")} />
      <label class="field">
        <span>Transport</span>
        <select value={form.transport} onChange={(e) => set("transport")((e.currentTarget as HTMLSelectElement).value)}>
          <option value="udp">UDP</option>
          <option value="tcp">TCP</option>
          <option value="tls">TLS</option>
        </select>
      </label>
      <Text label="Outbound proxy (optional)" value={form.outbound_proxy} onInput={set("outbound_proxy")} />
      <Text label="Your phone number" value={form.number} onInput={set("number")} />
      <Text
        label="Password"
        type="password"
        value={form.password}
        onInput={set("password")}
        test="sip-password"
        placeholder={form.password_set ? "stored in the keychain (type to replace)" : "not set"}
      />
      <button type="submit" data-test="save-phone">
        Save
      </button>
      <Feedback message={message} error={error} />
    </form>
  );
}

function Integrations(props: { view: ConfigurationView; extension: string; email: string; onChanged: () => void }) {
  const [name, setName] = useState("");
  const [template, setTemplate] = useState(props.view.templates[0] ?? "");
  const [file, setFile] = useState("");
  const [added, setAdded] = useState<string | null>(null);
  const [message, error, report] = useFeedback();
  return (
    <section class="card" data-test="integrations">
      <h3>Integrations</h3>
      <p class="muted">Lookups ask them in order (lowest first).</p>
      {props.view.integrations.map((form) => (
        <Integration
          key={form.name}
          initial={form}
          startOpen={form.name === added || form.missing.length > 0}
          extension={props.extension}
          email={props.email}
          onChanged={props.onChanged}
        />
      ))}
      <form
        class="add"
        onSubmit={async (e) => {
          e.preventDefault();
          const source = file.trim() || template;
          if (report(await commands.addIntegration(name.trim(), source), `Added ${name.trim()}: fill in its fields above.`)) {
            setAdded(name.trim());
            setName("");
            setFile("");
            props.onChanged();
          }
        }}
      >
        <h4>Add an integration</h4>
        <Text label="Name" value={name} onInput={setName} test="integration-name" placeholder="e.g. hubspot" />
        <label class="field">
          <span>Built-in template</span>
          <select value={template} onChange={(e) => setTemplate((e.currentTarget as HTMLSelectElement).value)} data-test="integration-template">
            {props.view.templates.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <Text label="…or a template file (absolute path)" value={file} onInput={setFile} test="integration-file" placeholder="/path/to/my-crm.xml" />
        <button type="submit" data-test="add-integration" disabled={!name.trim()}>
          Add
        </button>
        <Feedback message={message} error={error} />
      </form>
    </section>
  );
}

function Integration(props: { initial: IntegrationForm; startOpen: boolean; extension: string; email: string; onChanged: () => void }) {
  const [form, setForm] = useState<IntegrationForm>(props.initial);
  // Saved values come back from the files (passwords empty again, "missing" updated).
  useEffect(() => setForm(props.initial), [props.initial]);
  // Open at first when something is missing; the agent opens and closes it after that.
  const [open] = useState(props.startOpen);
  const [number, setNumber] = useState("");
  const [message, error, report] = useFeedback();
  const setField = (index: number, value: string) =>
    setForm({ ...form, fields: form.fields.map((f, i) => (i === index ? { ...f, value } : f)) });
  return (
    <details class="integration" data-test="integration" data-name={form.name} open={open}>
      <summary>
        <strong>{form.name}</strong> · {form.provider} {form.enabled ? "" : "(off)"}
        {form.missing.length > 0 && <span class="error"> · missing: {form.missing.join(", ")}</span>}
      </summary>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (report(await commands.saveIntegration(form), "Saved.")) props.onChanged();
        }}
      >
        {form.fields.map((field: FieldForm, i) =>
          field.kind === "list" ? (
            <label class="field" key={field.name}>
              <span>{field.title}</span>
              <select value={field.value} onChange={(e) => setField(i, (e.currentTarget as HTMLSelectElement).value)}>
                {field.options.map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            </label>
          ) : (
            <Text
              key={field.name}
              label={field.title}
              type={field.kind === "password" ? "password" : "text"}
              value={field.value}
              test={`field-${field.name}`}
              placeholder={field.kind === "password" ? (field.set ? "stored in the keychain (type to replace)" : "not set") : ""}
              onInput={(v) => setField(i, v)}
            />
          ),
        )}
        <label class="field check">
          <input type="checkbox" checked={form.enabled} onChange={(e) => setForm({ ...form, enabled: (e.currentTarget as HTMLInputElement).checked })} />
          <span>Enabled</span>
        </label>
        <label class="field">
          <span>Lookup order</span>
          <input
            type="number"
            value={form.order === 2147483647 ? "" : form.order}
            onInput={(e) => setForm({ ...form, order: Number((e.currentTarget as HTMLInputElement).value || 2147483647) })}
          />
        </label>
        <label class="field">
          <span>Create contacts for unknown numbers</span>
          <select value={form.create_contacts} onChange={(e) => setForm({ ...form, create_contacts: (e.currentTarget as HTMLSelectElement).value })}>
            <option value="manual">Only when I click Create contact</option>
            <option value="inbound">Automatically for incoming calls</option>
            <option value="outbound">Automatically for calls I make</option>
            <option value="both">Automatically for both</option>
            <option value="never">Never</option>
          </select>
        </label>
        <div class="row">
          <button type="submit" data-test="save-integration">
            Save
          </button>
          {(form.auth === "oauth2" || form.auth === "bearertoken") && (
            <button type="button" onClick={async () => report(await commands.signIn(form.name), "Signed in.")}>
              Sign in
            </button>
          )}
          <button
            type="button"
            disabled={!props.email}
            title={props.email ? `Find the CRM user with ${props.email}` : "Set your email below first"}
            onClick={async () => {
              const found = await commands.associateUser(form.name, props.extension, props.email);
              if (found.status === "ok") report({ status: "ok" }, found.data ? `Associated with CRM user ${found.data}.` : `No CRM user has ${props.email}.`);
              else report(found, "");
            }}
          >
            Associate my CRM user
          </button>
          <button
            type="button"
            class="ghost"
            onClick={async () => {
              if (confirm(`Remove ${form.name} and its stored secrets?`) && report(await commands.removeIntegration(form.name), "Removed.")) props.onChanged();
            }}
          >
            Remove
          </button>
        </div>
        <div class="row">
          <input data-test="test-number" placeholder="A customer's number" value={number} onInput={(e) => setNumber((e.currentTarget as HTMLInputElement).value)} />
          <button
            type="button"
            data-test="test-connection"
            disabled={!number.trim()}
            onClick={async () => {
              const result = await commands.testIntegration(form.name, number.trim());
              if (result.status === "error") report(result, "");
              else if (!result.data.ok) report({ status: "error", error: { message: result.data.error ?? "failed" } }, "");
              else
                report(
                  { status: "ok" },
                  result.data.contacts.length > 0 ? `Connected. Found: ${result.data.contacts.join("; ")}.` : "Connected. No contact has that number.",
                );
            }}
          >
            Test connection
          </button>
        </div>
        <Feedback message={message} error={error} />
      </form>
    </details>
  );
}

function Desktop({ settings: initial, devices, onSaved }: { settings: DesktopSettings; devices: AudioDevice[]; onSaved: () => void }) {
  const [settings, setSettings] = useState<DesktopSettings>(initial);
  const [message, error, report] = useFeedback();
  const set = <K extends keyof DesktopSettings>(key: K, value: DesktopSettings[K]) => setSettings({ ...settings, [key]: value });
  const deviceChoice = (key: "audio_input" | "audio_output" | "audio_ringing", label: string, input: boolean) => (
    <label class="field">
      <span>{label}</span>
      <select value={settings[key]} onChange={(e) => set(key, (e.currentTarget as HTMLSelectElement).value)} data-test={key}>
        <option value="">System default</option>
        {devices
          .filter((d) => (input ? d.input : d.output))
          .map((d) => (
            <option key={d.id} value={d.id}>
              {d.name}
            </option>
          ))}
      </select>
    </label>
  );
  return (
    <form
      class="card"
      data-test="desktop-settings"
      onSubmit={async (e) => {
        e.preventDefault();
        if (report(await commands.saveDesktopSettings(settings), "Saved.")) onSaved();
      }}
    >
      <h3>Callbox</h3>
      <label class="field">
        <span>Open the CRM record</span>
        <select value={settings.popup} onChange={(e) => set("popup", (e.currentTarget as HTMLSelectElement).value as DesktopSettings["popup"])} data-test="popup">
          <option value="ringing">When a call rings</option>
          <option value="answered">When I answer</option>
          <option value="ended">When the call ends</option>
          <option value="never">Never on its own</option>
        </select>
      </label>
      <label class="field">
        <span>A CRM that cannot be shown inside Callbox opens in</span>
        <select
          value={settings.framing_fallback}
          onChange={(e) => set("framing_fallback", (e.currentTarget as HTMLSelectElement).value as DesktopSettings["framing_fallback"])}
        >
          <option value="window">A Callbox window</option>
          <option value="browser">My browser</option>
        </select>
      </label>
      <Text label="Shortcut: call the selected number" value={settings.shortcut} onInput={(v) => set("shortcut", v)} />
      <label class="field check">
        <input type="checkbox" checked={settings.start_at_login} onChange={(e) => set("start_at_login", (e.currentTarget as HTMLInputElement).checked)} />
        <span>Start Callbox when I log in</span>
      </label>
      <Text label="First name" value={settings.first_name} onInput={(v) => set("first_name", v)} />
      <Text label="Last name" value={settings.last_name} onInput={(v) => set("last_name", v)} />
      <Text label="Email (finds your CRM user)" value={settings.email} onInput={(v) => set("email", v)} />
      {deviceChoice("audio_input", "Microphone", true)}
      {deviceChoice("audio_output", "Headset / speaker", false)}
      {deviceChoice("audio_ringing", "Ring on", false)}
      <p class="muted">Call permission: {settings.call_right ? "granted by your role" : "not granted by your role (ask your administrator)"}.</p>
      <button type="submit" data-test="save-desktop">
        Save
      </button>
      <Feedback message={message} error={error} />
    </form>
  );
}
