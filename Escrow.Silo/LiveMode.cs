using Npgsql;

namespace Escrow.Silo;

/// <summary>
/// Live mode is any Stripe key other than the sandbox's: real money may move. A process in live mode refuses to start
/// while anything public or missing guards that money (a development secret, a plain-HTTP provider address, the
/// in-memory store, the Postmark sandbox whose outbox shows reply tokens). Nothing is generated in live mode.
/// </summary>
public static class LiveMode
{
    /// <summary>The key of the API's own Stripe sandbox; with no key at all the API uses it too.</summary>
    public const string SandboxStripeKey = "sk_test_sandbox";

    /// <summary>
    /// Keys of other sandbox processes (e.g. the benchmark's emulators in a process of their own): still no real
    /// money, but the API does not host the emulator for them. Stripe never issues a key that starts like this.
    /// </summary>
    public const string SandboxStripeKeyPrefix = SandboxStripeKey + "_";

    public const string SandboxPostmarkTokenPrefix = "sandbox-postmark-";

    /// <summary>Secrets shorter than this are refused in live mode.</summary>
    public const int SecretLengthMin = 24;

    /// <summary>The development values docker-compose.yml falls back on; they are public.</summary>
    public static readonly IReadOnlyList<string> ComposeDefaults =
    [
        "whsec_compose_dev_only",
        "whsec_compose_connect_dev_only",
        "compose-dev-only-inbound",
        "compose-dev-platform-key",
        "compose-dev-admin-key-0",
        "compose-dev-token-secret-0",
        "escrow-dev-only",
    ];

    private static readonly string[] DevelopmentPrefixes = ["dev-", "dev_", "compose-", "compose_", "sandbox-", "sandbox_"];

    public static bool IsSandboxStripeKey(string? key) =>
        string.IsNullOrWhiteSpace(key) || key == SandboxStripeKey || key.StartsWith(SandboxStripeKeyPrefix, StringComparison.Ordinal);

    public static bool IsLive(IConfiguration configuration) => !IsSandboxStripeKey(configuration["Stripe:SecretKey"]);

    /// <summary>No token, or one of the sandbox's: e-mail goes to the Postmark emulator.</summary>
    public static bool UsesPostmarkSandbox(IConfiguration configuration) =>
        string.IsNullOrWhiteSpace(configuration["Postmark:ServerToken"])
        || configuration["Postmark:ServerToken"]!.StartsWith(SandboxPostmarkTokenPrefix, StringComparison.Ordinal);

    /// <summary>Whether a value is public: a compose default, or named as a development value.</summary>
    public static bool IsDevelopmentValue(string value)
    {
        var bare = value.StartsWith("whsec_", StringComparison.Ordinal) ? value["whsec_".Length..] : value;
        return ComposeDefaults.Contains(value, StringComparer.OrdinalIgnoreCase)
            || DevelopmentPrefixes.Any(p => bare.StartsWith(p, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// Every reason not to start in live mode, each naming its configuration key; empty outside live mode.
    /// </summary>
    /// <param name="servesApi">The API host, which also checks the secrets only it uses (API keys, webhook credentials).</param>
    public static IReadOnlyList<string> Problems(IConfiguration c, bool servesApi)
    {
        if (!IsLive(c))
        {
            return [];
        }
        var problems = new List<string>();
        if (UsesPostmarkSandbox(c))
        {
            problems.Add("Postmark:ServerToken: the Postmark sandbox cannot run beside a real Stripe key (its outbox shows reply tokens, and a reply token releases real money). Set Postmark__ServerToken to the server token of your Postmark server.");
        }
        if (string.IsNullOrWhiteSpace(c.GetConnectionString(EscrowHosting.ConnectionStringName)))
        {
            problems.Add("ConnectionStrings:Escrow: missing. Real money is never kept in memory: set ConnectionStrings__Escrow to a PostgreSQL connection string.");
        }
        else if (PasswordOf(c.GetConnectionString(EscrowHosting.ConnectionStringName)!) is { } password && IsDevelopmentValue(password))
        {
            problems.Add("ConnectionStrings:Escrow: the password is a public development value (docker-compose.yml's default); set POSTGRES_PASSWORD.");
        }
        foreach (var key in new[] { "Stripe:ApiBase", "Postmark:ApiBase" })
        {
            if (!string.IsNullOrWhiteSpace(c[key]) && !IsHttps(c[key]!))
            {
                problems.Add($"{key}: '{c[key]}' is not an https:// URL. In live mode the providers are reached over TLS only; remove the setting to use the provider's own address.");
            }
        }
        // Every silo derives tokens (reminders' reply addresses, receipts' links): each needs the same secrets.
        CheckKeys(problems, c, "Tokens:Secrets");
        if (servesApi)
        {
            CheckSecret(problems, "Stripe:WebhookSecret", c["Stripe:WebhookSecret"], "the signing secret of the platform's webhook endpoint in the Stripe dashboard (whsec_…)");
            // Connected accounts' events (account.updated) come only to the Connect endpoint, signed with its own secret.
            CheckSecret(problems, "Stripe:ConnectWebhookSecret", c["Stripe:ConnectWebhookSecret"], "the signing secret of the Connect webhook endpoint in the Stripe dashboard (whsec_…)");
            CheckSecret(problems, "Postmark:InboundPassword", c["Postmark:InboundPassword"], "the password in the inbound webhook URL configured at Postmark");
            if (string.IsNullOrWhiteSpace(c["Postmark:InboundUsername"]))
            {
                problems.Add("Postmark:InboundUsername: missing; set Postmark__InboundUsername (the user name in the inbound webhook URL).");
            }
            CheckKeys(problems, c, "Api:PlatformKeys");
            CheckKeys(problems, c, "Api:AdminKeys");
        }
        return problems;
    }

    /// <summary>Throws <see cref="LiveModeRefusedException"/> listing every problem at once, if there is any.</summary>
    public static void EnsureSafe(IConfiguration configuration, bool servesApi)
    {
        var problems = Problems(configuration, servesApi);
        if (problems.Count > 0)
        {
            throw new LiveModeRefusedException(problems);
        }
    }

    private static void CheckKeys(List<string> problems, IConfiguration c, string section)
    {
        var keys = c.GetSection(section).GetChildren().Select(k => (k.Path, k.Value)).ToList();
        if (keys.Count == 0 || keys.All(k => string.IsNullOrWhiteSpace(k.Value)))
        {
            problems.Add($"{section}: nothing configured (nothing is generated in live mode); set {section.Replace(":", "__", StringComparison.Ordinal)}__0 to a random value of at least {SecretLengthMin} characters.");
            return;
        }
        foreach (var (path, value) in keys)
        {
            CheckSecret(problems, path, value, "a random value");
        }
    }

    private static void CheckSecret(List<string> problems, string key, string? value, string what)
    {
        var variable = key.Replace(":", "__", StringComparison.Ordinal);
        if (string.IsNullOrWhiteSpace(value))
        {
            problems.Add($"{key}: missing (nothing is generated in live mode); set {variable} to {what}.");
        }
        else if (IsDevelopmentValue(value))
        {
            problems.Add($"{key}: a public development value (a docker-compose default, or one starting with dev-, compose- or sandbox-); set {variable} to {what}.");
        }
        else if (value.Length < SecretLengthMin)
        {
            problems.Add($"{key}: shorter than {SecretLengthMin} characters; set {variable} to {what}.");
        }
    }

    private static bool IsHttps(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttps && !string.IsNullOrEmpty(uri.Host);

    private static string? PasswordOf(string connectionString)
    {
        try
        {
            return new NpgsqlConnectionStringBuilder(connectionString).Password;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}

/// <summary>The process refuses to start in live mode; the message lists every problem, each with its key.</summary>
public sealed class LiveModeRefusedException(IReadOnlyList<string> problems)
    : Exception("Escrow refuses to start in live mode (Stripe:SecretKey is a real Stripe key):" + Environment.NewLine
        + string.Join(Environment.NewLine, problems.Select(p => "  - " + p)))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>How a host refuses to start: the problems on standard error and exit code 1, with no stack trace.</summary>
public static class StartRefusal
{
    public const int ExitCode = 1;

    /// <summary>
    /// Throws when <see cref="LiveMode.Problems"/> finds anything. The exception stays an exception (a test host that
    /// runs Program sees it); only if nothing catches it does the process print the list and exit with
    /// <see cref="ExitCode"/> instead of crashing with a stack trace.
    /// </summary>
    public static void EnsureSafe(IConfiguration configuration, bool servesApi)
    {
        var problems = LiveMode.Problems(configuration, servesApi);
        if (problems.Count == 0)
        {
            return;
        }
        var refusal = new LiveModeRefusedException(problems);
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            if (ReferenceEquals(e.ExceptionObject, refusal))
            {
                Console.Error.WriteLine(refusal.Message);
                Console.Error.Flush();
                Environment.Exit(ExitCode);
            }
        };
        throw refusal;
    }
}
