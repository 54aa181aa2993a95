import { useEffect, useRef, useState } from "preact/hooks";
import type { CreatedKey } from "./types.js";

/**
 * What happens once the secret was seen: `stay` (keys were already on), `signed-in` (the first key, an admin one,
 * became this tab's session key), `sign-in-needed` (the first key cannot manage keys: the tab signs out).
 */
export type AfterCreate = "stay" | "signed-in" | "sign-in-needed";

interface Props {
  created: CreatedKey;
  after: AfterCreate;
  onDone: () => void;
}

/** The new key's secret, shown this once (the server keeps only its hash), with a copy button. */
export function NewKeySecret({ created, after, onDone }: Props) {
  const [copied, setCopied] = useState<"no" | "yes" | "failed">("no");
  const secret = useRef<HTMLElement>(null);
  useEffect(() => secret.current?.focus(), []);

  const copy = async (): Promise<void> => {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied("yes");
    } catch {
      // No clipboard access (an insecure origin, a refused permission): select the text for a manual copy.
      const range = document.createRange();
      if (secret.current) range.selectNodeContents(secret.current);
      getSelection()?.removeAllRanges();
      getSelection()?.addRange(range);
      setCopied("failed");
    }
  };

  return (
    <div class="card admin-secret" role="region" aria-labelledby="admin-secret-title">
      <h3 id="admin-secret-title">
        Key “{created.name}” created ({created.scope})
      </h3>
      <p class="admin-warning">
        <strong>Copy it now: it is not shown again.</strong> The server keeps only a hash of it.
      </p>
      <div class="row">
        <code class="admin-secret-value grow" data-testid="admin-key-new-secret" tabIndex={-1} ref={secret}>
          {created.key}
        </code>
        <button type="button" data-testid="admin-key-copy" onClick={() => void copy()}>
          {copied === "yes" ? "Copied" : "Copy"}
        </button>
      </div>
      {copied === "failed" && <p class="muted">The browser refused the clipboard: the key is selected, copy it with Ctrl+C.</p>}
      {after === "signed-in" && <p>Keys are on now: every client needs a key. This browser tab is signed in with this new admin key.</p>}
      {after === "sign-in-needed" && <p>Keys are on now, and this key cannot manage keys: the dashboard asks for an admin key next.</p>}
      <div class="row">
        <button type="button" class="primary" data-testid="admin-key-secret-done" onClick={onDone}>
          I have copied it
        </button>
      </div>
    </div>
  );
}
