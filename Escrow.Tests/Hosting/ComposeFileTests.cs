using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace Escrow.Tests.Hosting;

/// <summary>
/// docker-compose.yml and the Dockerfile, checked for what can be checked without Docker: entry points and health
/// checks run files and commands the images have, secrets come from the environment, published ports are loopback.
/// </summary>
public sealed partial class ComposeFileTests
{
    /// <summary>
    /// Commands known to be in the images the file uses: the ASP.NET runtime image has dotnet and neither wget nor curl;
    /// the postgres image has pg_isready.
    /// </summary>
    private static readonly Dictionary<string, string[]> ImageCommands = new(StringComparer.Ordinal)
    {
        ["mcr.microsoft.com/dotnet/aspnet"] = ["dotnet"],
        ["postgres"] = ["pg_isready", "psql"],
    };

    private static readonly string Root = ApiProcess.RepositoryRoot();
    private static readonly YamlMappingNode Services = (YamlMappingNode)Compose()["services"];

    [Fact]
    public void Every_entry_point_is_a_dll_the_Dockerfile_publishes()
    {
        var published = PublishedDlls();
        var built = Services.Children.Where(s => Has(s.Value, "build")).ToList();
        Assert.NotEmpty(built);
        foreach (var (name, service) in built)
        {
            var entry = Strings(((YamlMappingNode)service)["entrypoint"]);
            Assert.True(entry.Count == 2 && entry[0] == "dotnet", $"{name}: entrypoint {string.Join(' ', entry)} is not dotnet <dll>");
            Assert.True(published.Contains(entry[1]), $"{name}: {entry[1]} is not published by the Dockerfile ({string.Join(", ", published)})");
        }
    }

    [Fact]
    public void Every_health_check_runs_a_command_its_image_has()
    {
        var published = PublishedDlls();
        var checks = Services.Children.Where(s => Has(s.Value, "healthcheck")).ToList();
        Assert.Contains(checks, s => s.Key.ToString() == "api");
        foreach (var (name, node) in checks)
        {
            var service = (YamlMappingNode)node;
            var test = Strings(((YamlMappingNode)service["healthcheck"])["test"]);
            var command = test[0] switch
            {
                "CMD" => test.Skip(1).ToList(),
                "CMD-SHELL" => [.. test[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)],
                _ => throw new Xunit.Sdk.XunitException($"{name}: health check form {test[0]}"),
            };
            var image = Has(service, "build") ? FinalImage() : service["image"].ToString();
            var known = ImageCommands.Single(i => image == i.Key || image.StartsWith(i.Key + ":", StringComparison.Ordinal)).Value;
            Assert.True(known.Contains(command[0]), $"{name}: the health check runs {command[0]}, which {image} does not have (it has {string.Join(", ", known)})");
            if (command[0] == "dotnet")
            {
                Assert.True(published.Contains(command[1]), $"{name}: {command[1]} is not published by the Dockerfile");
                Assert.Equal("--health-check", command[2]);
                var listen = EnvironmentOf(service)["ASPNETCORE_URLS"];
                Assert.Equal(new Uri(listen.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal)).Port, new Uri(command[3]).Port);
            }
        }
    }

    [Fact]
    public void Every_secret_is_taken_from_the_environment()
    {
        var secrets = 0;
        foreach (var (name, node) in Services.Children)
        {
            foreach (var (key, value) in EnvironmentOf((YamlMappingNode)node))
            {
                var secret = SecretName().IsMatch(key) || value.Contains("Password=", StringComparison.OrdinalIgnoreCase);
                if (!secret)
                {
                    continue;
                }
                secrets++;
                Assert.True(value.Contains("${", StringComparison.Ordinal), $"{name}: {key} is written in the file, not taken from the environment");
            }
        }
        Assert.True(secrets >= 8, $"only {secrets} secrets found: the name pattern no longer matches the file");
    }

    [Fact]
    public void Every_published_port_is_bound_to_loopback()
    {
        var ports = Services.Children.Where(s => Has(s.Value, "ports"))
            .SelectMany(s => Strings(((YamlMappingNode)s.Value)["ports"]).Select(p => (Service: s.Key.ToString(), Port: p))).ToList();
        Assert.NotEmpty(ports);
        Assert.All(ports, p => Assert.True(p.Port.StartsWith("127.0.0.1:", StringComparison.Ordinal), $"{p.Service}: port {p.Port} is not bound to 127.0.0.1"));
    }

    private static YamlMappingNode Compose()
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Path.Combine(Root, "docker-compose.yml"));
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    /// <summary>/app/&lt;dir&gt;/&lt;Project&gt;.dll for each <c>dotnet publish &lt;Project&gt;.csproj -o /out/&lt;dir&gt;</c>, with /out copied to /app.</summary>
    private static HashSet<string> PublishedDlls()
    {
        var dockerfile = File.ReadAllText(Path.Combine(Root, "Dockerfile"));
        Assert.Matches(@"COPY --from=build /out /app", dockerfile);
        var dlls = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match m in Publish().Matches(dockerfile))
        {
            Assert.True(File.Exists(Path.Combine(Root, m.Groups["project"].Value)), $"the Dockerfile publishes {m.Groups["project"].Value}, which does not exist");
            dlls.Add($"/app/{m.Groups["dir"].Value}/{Path.GetFileNameWithoutExtension(m.Groups["project"].Value)}.dll");
        }
        Assert.NotEmpty(dlls);
        return dlls;
    }

    private static string FinalImage() =>
        File.ReadAllLines(Path.Combine(Root, "Dockerfile")).Last(l => l.StartsWith("FROM ", StringComparison.Ordinal)).Split(' ')[1];

    /// <summary>A service's environment, with the YAML merge keys (<c>&lt;&lt;: *escrow-env</c>) applied.</summary>
    private static Dictionary<string, string> EnvironmentOf(YamlMappingNode service)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!Has(service, "environment"))
        {
            return result;
        }
        foreach (var (key, value) in (YamlMappingNode)service["environment"])
        {
            if (key.ToString() == "<<")
            {
                foreach (var (k, v) in (YamlMappingNode)value)
                {
                    result.TryAdd(k.ToString(), v.ToString());
                }
            }
            else
            {
                result[key.ToString()] = value.ToString();
            }
        }
        return result;
    }

    private static bool Has(YamlNode node, string key) => node is YamlMappingNode m && m.Children.ContainsKey(new YamlScalarNode(key));

    private static List<string> Strings(YamlNode node) => node is YamlSequenceNode s ? [.. s.Children.Select(c => c.ToString())] : [node.ToString()];

    [GeneratedRegex(@"dotnet publish (?<project>\S+\.csproj)\s.*?-o /out/(?<dir>\w+)")]
    private static partial Regex Publish();

    [GeneratedRegex("(Password|Secret|Token|Keys__)", RegexOptions.IgnoreCase)]
    private static partial Regex SecretName();
}
