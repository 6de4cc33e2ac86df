# IIS on Windows Server 2022. Runs once as SYSTEM on the build instance; throwing or a
# non-zero exit fails the build. amiforge runs sysprep after it succeeds.
$ErrorActionPreference = 'Stop'

Install-WindowsFeature -Name Web-Server, Web-Asp-Net45, Web-Mgmt-Console -IncludeManagementTools

# A health page for the load balancer.
$root = 'C:\inetpub\wwwroot'
Set-Content -Path (Join-Path $root 'healthz.html') -Value 'ok' -Encoding ASCII

# Keep IIS logs off the system drive's default location once data volumes exist.
Import-Module WebAdministration
Set-ItemProperty 'IIS:\Sites\Default Web Site' -Name logFile.directory -Value 'C:\logs\iis'
New-Item -ItemType Directory -Force -Path 'C:\logs\iis' | Out-Null

# Record what built this image (the wrapper sets these).
"recipe=$env:AMIFORGE_RECIPE`nrecipe_hash=$env:AMIFORGE_RECIPE_HASH" |
    Set-Content -Path 'C:\ProgramData\amiforge-image.txt'

exit 0
