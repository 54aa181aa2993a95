import { InvalidRequestError, ResponseNotFoundError } from "../../domain/errors.js";
import type { ResponseStore, ResponseViewer } from "../../store/response-store.js";
import { parseInputItem, pathText, type ConversationItem, type ResponsesBody } from "./responses-schema.js";

/** A conversation item, and where it came from (for the field an error names). */
export interface PlacedItem {
  item: ConversationItem;
  /** `input[2]`, or `previous_response_id` for the items of the response it continues. */
  field: string;
}

/**
 * The whole conversation a request answers: the conversation and output of the response it continues
 * (`previous_response_id`; its instructions are not carried over, as on OpenAI's API), then the request's input, a
 * string being one user message. `item_reference` inputs are replaced by the stored items they name. A response
 * or item that is not stored (or no longer) is a ResponseNotFoundError naming it; no input at all is a 400.
 */
export async function resolveConversation(
  store: ResponseStore,
  body: Pick<ResponsesBody, "input" | "previous_response_id">,
  viewer: ResponseViewer,
): Promise<PlacedItem[]> {
  const items: PlacedItem[] = [];
  if (body.previous_response_id !== undefined) {
    const previous = await store.get(body.previous_response_id, viewer);
    if (!previous) throw new ResponseNotFoundError("previous_response_id: response", body.previous_response_id);
    for (const stored of [...previous.input, ...previous.output]) {
      items.push({ item: asConversationItem(stored, ["previous_response_id"]), field: "previous_response_id" });
    }
  }
  const input = body.input;
  if (typeof input === "string") items.push({ item: { type: "message", role: "user", content: input }, field: "input" });
  else {
    for (const [index, raw] of (input ?? []).entries()) {
      const path = ["input", index];
      const parsed = parseInputItem(raw, path);
      if (parsed.type !== "item_reference") {
        items.push({ item: parsed, field: pathText(path) });
        continue;
      }
      const stored = await store.item(parsed.id, viewer);
      if (stored === undefined) throw new ResponseNotFoundError(`${pathText(path)}: item`, parsed.id);
      items.push({ item: asConversationItem(stored, path), field: pathText(path) });
    }
  }
  if (items.length === 0) throw new InvalidRequestError("input: expected a string or input items (or a previous_response_id to continue)");
  return items;
}

/** A stored item (an earlier input or output item) as a conversation item; stored items never hold references. */
function asConversationItem(stored: unknown, path: PropertyKey[]): ConversationItem {
  const item = parseInputItem(stored, path);
  if (item.type === "item_reference") throw new InvalidRequestError(`${pathText(path)}: a stored item refers to another`);
  return item;
}
