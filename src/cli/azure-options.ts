import { type Command, Option } from "commander";
import {
  type AzureSettings,
  azureSettingsFromEnv,
  mergeAzureSettings,
  parseAzureConcurrency,
  parseBlockSizeMiB,
} from "../store/azure-settings.ts";

/** The values commander collects for the options `addAzureOptions` adds. */
export interface AzureOptionValues {
  azureAccount?: string;
  azureEndpoint?: string;
  azureAccountKeyFile?: string;
  azureSasTokenFile?: string;
  azureBlockSize?: number;
  azureConcurrency?: number;
}

/**
 * Adds the Azure Blob flags to a command and returns it. Secrets are never flag values (they would show in `ps`):
 * a key or SAS comes from a file or the environment (AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN,
 * AZURE_STORAGE_CONNECTION_STRING); without one, the Azure SDK's default credential chain is used.
 */
export function addAzureOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("--azure-account <name>", "storage account (env AZURE_STORAGE_ACCOUNT)").helpGroup(
        "Azure Blob:",
      ),
    )
    .addOption(
      new Option(
        "--azure-endpoint <url>",
        "Blob service URL for sovereign clouds and emulators (default https://ACCOUNT.blob.core.windows.net)",
      ).helpGroup("Azure Blob:"),
    )
    .addOption(
      new Option(
        "--azure-account-key-file <file>",
        "file holding the account key (or env AZURE_STORAGE_KEY); default: workload/managed identity",
      ).helpGroup("Azure Blob:"),
    )
    .addOption(
      new Option(
        "--azure-sas-token-file <file>",
        "file holding a SAS token (or env AZURE_STORAGE_SAS_TOKEN)",
      ).helpGroup("Azure Blob:"),
    )
    .addOption(
      new Option("--azure-block-size <MiB>", "staged block size, 1 to 4000 (default 8)")
        .argParser((v) => parseBlockSizeMiB(v, "--azure-block-size"))
        .helpGroup("Azure Blob:"),
    )
    .addOption(
      new Option("--azure-concurrency <n>", "blocks staged at once (default 4)")
        .argParser((v) => parseAzureConcurrency(v, "--azure-concurrency"))
        .helpGroup("Azure Blob:"),
    );
}

/** The Azure settings the flags give, over those of the environment (`azureSettingsFromEnv`). */
export function azureSettingsFromOptions(
  opts: AzureOptionValues,
  env: NodeJS.ProcessEnv = process.env,
): AzureSettings {
  const flags: AzureSettings = {};
  if (opts.azureAccount) flags.account = opts.azureAccount;
  if (opts.azureEndpoint) flags.endpoint = opts.azureEndpoint;
  if (opts.azureAccountKeyFile) flags.accountKeyFile = opts.azureAccountKeyFile;
  if (opts.azureSasTokenFile) flags.sasTokenFile = opts.azureSasTokenFile;
  if (opts.azureBlockSize !== undefined) flags.blockSize = opts.azureBlockSize;
  if (opts.azureConcurrency !== undefined) flags.concurrency = opts.azureConcurrency;
  return mergeAzureSettings(azureSettingsFromEnv(env), flags);
}
