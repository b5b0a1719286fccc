using System.Diagnostics;

namespace Escrow.Tests.Api.OpenApi;

/// <summary>
/// The served /openapi/v1.json is what integrators generate clients from: complete, secured, linted by Redocly. Read here
/// with the admin routes documented (the public default leaves them out), so every operation is checked.
/// </summary>
public sealed class OpenApiDocumentTests(AdminRoutesDocumentedFixture fixture) : IClassFixture<AdminRoutesDocumentedFixture>
{
    public const string RedoclyVersion = "2.77.0";

    private EscrowApiFactory App => fixture.Factory;

    private async Task<JsonElement> DocumentAsync() => await App.Anonymous().GetFromJsonAsync<JsonElement>("/openapi/v1.json");

    private static IEnumerable<(string Path, string Method, JsonElement Operation)> Operations(JsonElement document) =>
        document.GetProperty("paths").EnumerateObject().SelectMany(p => p.Value.EnumerateObject().Select(o => (p.Name, o.Name, o.Value)));

    [Fact]
    public async Task Every_operation_has_an_id_a_summary_a_tag_security_and_documented_refusals()
    {
        var document = await DocumentAsync();
        var operations = Operations(document).ToList();
        Assert.True(operations.Count >= 19, $"only {operations.Count} operations");
        var ids = new HashSet<string>();
        foreach (var (path, method, operation) in operations)
        {
            var name = $"{method} {path}";
            Assert.True(ids.Add(operation.GetProperty("operationId").GetString()!), name + ": duplicate operation id");
            Assert.False(string.IsNullOrWhiteSpace(operation.GetProperty("summary").GetString()), name);
            Assert.False(string.IsNullOrWhiteSpace(operation.GetProperty("description").GetString()), name);
            Assert.True(operation.GetProperty("tags").GetArrayLength() > 0, name);
            Assert.True(operation.GetProperty("security").GetArrayLength() > 0, name + ": no security");
            var responses = operation.GetProperty("responses");
            Assert.Contains(responses.EnumerateObject(), r => r.Name.StartsWith('2'));
            foreach (var refusal in responses.EnumerateObject().Where(r => r.Name[0] is '4' or '5'))
            {
                var schema = refusal.Value.GetProperty("content").GetProperty("application/problem+json").GetProperty("schema").GetProperty("$ref").GetString();
                Assert.Equal("#/components/schemas/ApiProblem", schema);
            }
            if (operation.TryGetProperty("requestBody", out var body))
            {
                Assert.True(body.GetProperty("content").GetProperty("application/json").TryGetProperty("example", out _), name + ": body without example");
            }
        }
        var problem = document.GetProperty("components").GetProperty("schemas").GetProperty("ApiProblem").GetProperty("properties");
        Assert.True(problem.TryGetProperty("rejection", out _));
        Assert.True(problem.TryGetProperty("errors", out _));
        var tags = document.GetProperty("tags").EnumerateArray().ToList();
        Assert.All(tags, t => Assert.False(string.IsNullOrWhiteSpace(t.GetProperty("description").GetString())));
    }

    [Fact]
    public async Task The_dashboard_and_sandbox_routes_are_not_in_the_document()
    {
        var paths = (await DocumentAsync()).GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.DoesNotContain(paths, p => p.StartsWith("/dashboard", StringComparison.Ordinal) || p.StartsWith("/_sandbox", StringComparison.Ordinal));
        Assert.Contains("/v1/admin/escrows", paths);
    }

    [Fact]
    public async Task The_create_documents_its_body_constraints_its_key_header_and_every_outcome()
    {
        var document = await DocumentAsync();
        var create = document.GetProperty("paths").GetProperty("/v1/escrows").GetProperty("post");
        var statuses = create.GetProperty("responses").EnumerateObject().Select(r => r.Name).ToHashSet();
        Assert.Superset(new HashSet<string> { "201", "400", "402", "404", "409", "413", "415", "422", "429", "503" }, statuses);
        Assert.True(create.GetProperty("responses").GetProperty("503").GetProperty("headers").TryGetProperty("Retry-After", out _));
        Assert.True(create.GetProperty("responses").GetProperty("429").GetProperty("headers").TryGetProperty("Retry-After", out _));
        var header = Assert.Single(create.GetProperty("parameters").EnumerateArray(), p => p.GetProperty("name").GetString() == "Idempotency-Key");
        Assert.True(header.GetProperty("required").GetBoolean());
        var body = document.GetProperty("components").GetProperty("schemas").GetProperty("CreateEscrowBody");
        Assert.Equal(200, body.GetProperty("properties").GetProperty("subject").GetProperty("maxLength").GetInt32());
        Assert.Equal(10, body.GetProperty("properties").GetProperty("message").GetProperty("minLength").GetInt32());
        Assert.Contains("pm_", body.GetProperty("properties").GetProperty("paymentMethodId").GetProperty("pattern").GetString());
        Assert.DoesNotContain(body.GetProperty("required").EnumerateArray(), r => r.GetString() == "paymentMethodId");
        var schemes = document.GetProperty("components").GetProperty("securitySchemes");
        foreach (var scheme in new[] { "platformKey", "adminKey", "accessToken", "postmarkBasic", "stripeSignature" })
        {
            Assert.True(schemes.TryGetProperty(scheme, out _), scheme);
        }
    }

    /// <summary>Redocly's recommended rules, run by the pinned CLI from npm on the document as served.</summary>
    [Fact]
    public async Task Redocly_lint_with_the_recommended_rules_finds_no_error()
    {
        var directory = Directory.CreateTempSubdirectory("escrow-openapi-");
        try
        {
            var file = Path.Combine(directory.FullName, "openapi.json");
            await File.WriteAllTextAsync(file, await App.Anonymous().GetStringAsync("/openapi/v1.json"));
            var report = Path.Combine(directory.FullName, "lint.json");
            var (exit, output) = await Tool.RunAsync("npx", ["--yes", $"@redocly/cli@{RedoclyVersion}", "lint", file, "--format=json"], directory.FullName, TimeSpan.FromMinutes(5));
            using var json = JsonDocument.Parse(output[output.IndexOf('{')..]);
            var totals = json.RootElement.GetProperty("totals");
            var problems = string.Join("\n", json.RootElement.GetProperty("problems").EnumerateArray().Select(p => $"{p.GetProperty("severity")} {p.GetProperty("ruleId")}: {p.GetProperty("message")}"));
            Assert.True(totals.GetProperty("errors").GetInt32() == 0, problems);
            Assert.True(exit == 0, $"redocly exited {exit}\n{problems}");
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}

/// <summary>Runs an external tool and returns its exit code and standard output (standard error is appended on failure).</summary>
public static class Tool
{
    public static async Task<(int Exit, string Output)> RunAsync(string file, IEnumerable<string> arguments, string workingDirectory, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["NO_COLOR"] = "1";
        start.Environment["REDOCLY_TELEMETRY"] = "off";
        start.Environment["REDOCLY_SUPPRESS_UPDATE_NOTICE"] = "true";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', start.ArgumentList)} did not finish within {timeout}: {await stderr}");
        }
        var output = await stdout;
        return (process.ExitCode, process.ExitCode == 0 ? output : output + "\n" + await stderr);
    }
}
