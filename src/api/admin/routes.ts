import type { FastifyPluginAsync } from "fastify";
import type { Services } from "../../services.js";
import { acceptJsonWhateverTheContentType, bindHandlers } from "../route-kit.js";
import { listAudit } from "./audit.js";
import { createKey, listKeys, revokeKey } from "./keys.js";
import { whoAmI } from "./whoami.js";

/**
 * The server's own administration API (not Ollama's nor OpenAI's): API keys and the audit log. Errors answer in
 * Ollama's shape `{"error": "…"}`. Every route here needs an admin key (src/auth/route-access.ts) but /api/whoami, which any key may call.
 */
export function adminRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    acceptJsonWhateverTheContentType(app);
    const on = bindHandlers(services);
    app.post("/api/keys", on(createKey));
    app.get("/api/keys", on(listKeys));
    app.delete("/api/keys/:id", on(revokeKey));
    app.get("/api/audit", on(listAudit));
    app.get("/api/whoami", on(whoAmI));
  };
}
