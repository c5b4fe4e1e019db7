/**
 * The Worker that runs the language server's checker (`_lsp_checker.ts`): its first message
 * is the checker's options, every later one a request; answers go back as messages.
 */
import { Checker, type CheckerOptions, type CheckerRequest } from "./_lsp_checker.ts";

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<CheckerOptions | CheckerRequest>) => void) | null;
  postMessage(message: unknown): void;
};
let checker: Checker | null = null;
scope.onmessage = (e) => {
  if (checker) checker.receive(e.data as CheckerRequest);
  else checker = new Checker(e.data as CheckerOptions, (r) => scope.postMessage(r));
};
