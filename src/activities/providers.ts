/**
 * The lookup every provider seam shares (traffic, metrics, migrators): the
 * built-in providers by name, with the ones injected through
 * ActivityDeps.providers added or replacing them, and one error for a name
 * nobody provides. Each seam keeps its own factory map next to its providers.
 */
import { configInvalid } from './failures';

/** `a`, `a or b`, `a, b or c`. */
function oneOf(names: string[]): string {
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}` : names.join('');
}

/**
 * The factory registered under `name`. `setting` is the config key that
 * chose it, for the message: e.g. `traffic.provider "linkerd" names no
 * provider: use istio, gateway-api, nginx or replicas`.
 */
export function providerFactory<F>(
  setting: string,
  name: string,
  builtin: Readonly<Record<string, F>>,
  injected: Readonly<Record<string, F>> = {},
): F {
  const factories: Record<string, F> = { ...builtin, ...injected };
  if (!Object.hasOwn(factories, name)) {
    throw configInvalid(`${setting} ${JSON.stringify(name)} names no provider: use ${oneOf(Object.keys(factories))}`);
  }
  return factories[name];
}
